"""Two processes on one database: a provider changed through one is followed by the other
within its sync interval (the catalogue version in `provider_changes`), without a restart."""

from __future__ import annotations

from typing import Any

from tests.providers_api.conftest import binance_like, wait_for


async def test_the_other_process_follows_create_disable_and_delete(start_server: Any) -> None:
    async with (
        start_server(provider_sync_s=0.2) as one,
        start_server(keep=True, provider_sync_s=0.2) as other,
    ):
        spec = binance_like(one.sim.url, "shared", health_interval_s=1)
        assert (await one.client.post("/api/providers", json=spec)).status_code == 201

        async def seen() -> Any:
            answer = await other.client.get("/api/providers/shared")
            return answer.json() if answer.status_code == 200 else None

        detail = await wait_for(seen)
        assert detail["source"] == "api"
        # The other process probes it too (alone, each process owns every provider).
        await wait_for(lambda: "health:shared" in other.runtime.scheduler.jobs())
        assert other.runtime.catalogue.providers["shared"].health_interval_s == 1.0

        await one.client.patch("/api/providers/shared", json={"enabled": False})
        await wait_for(lambda: "health:shared" not in other.runtime.scheduler.jobs())
        assert other.runtime.catalogue.providers["shared"].enabled is False

        await one.client.delete("/api/providers/shared")
        await wait_for(lambda: "shared" not in other.runtime.catalogue.providers)
        assert (await other.client.get("/api/providers/shared")).status_code == 404
        # The history is one, whichever process is asked.
        history = (await other.client.get("/api/providers/shared/changes")).json()
        assert [row["action"] for row in history] == ["delete", "patch", "create"]
