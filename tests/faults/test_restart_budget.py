"""A restart (kill -9 of `apiwatch serve`, no Redis) keeps each budget window's count: the
requests stored in the current period count against it, so a crash loop grants nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from apiwatch.catalogue.loader import BUILTIN_DIR
from apiwatch.simulator import Simulator
from tests.faults.servers import ADMIN, ServeProcess


def tiny_newsapi(directory: Path, per_day: int) -> Path:
    """NewsAPI as shipped, but with a day's quota a test can fill."""
    directory.mkdir()
    text = (BUILTIN_DIR / "newsapi.yaml").read_text()
    assert "rate_limits: {per_day: 100}" in text
    (directory / "newsapi.yaml").write_text(
        text.replace("rate_limits: {per_day: 100}", f"rate_limits: {{per_day: {per_day}}}")
    )
    return directory


async def outcomes(client: httpx.AsyncClient, times: int) -> list[str]:
    found = []
    for _ in range(times):
        response = await client.post("/api/schedule/trigger", json={"provider": "newsapi"})
        assert response.status_code == 200, response.text
        found += [r["outcome"] for r in response.json()["results"]]
    return found


async def day_used(client: httpx.AsyncClient) -> int:
    response = await client.get("/api/rate-limits", params={"provider": "newsapi"})
    assert response.status_code == 200, response.text
    body = response.json()
    windows = [w for w in body["windows"] if w["window"] == "day"]
    return int(windows[0]["used"])


async def test_kill_9_and_restart_do_not_grant_a_new_quota(tmp_path: Path) -> None:
    async with Simulator(port=0) as sim:
        env = {
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'budget.db'}",
            "APIWATCH_UPSTREAM_OVERRIDE": sim.url,
            "APIWATCH_CATALOGUE_DIR": str(tiny_newsapi(tmp_path / "catalogue", 4)),
            "NEWSAPI_KEY": "restart-test-newsapi-key",
        }
        serve = ServeProcess(env, tmp_path)
        try:
            await serve.start()
            async with httpx.AsyncClient(base_url=serve.url, headers={"X-API-Key": ADMIN}) as c:
                assert await outcomes(c, 3) == ["ok", "ok", "ok"]
                assert await day_used(c) == 3
            await asyncio.sleep(0.5)  # the recorder writes every 100 ms
            serve.kill()
            sent = sim.stats()["providers"]["newsapi"]["requests"]
            assert sent == 3

            for _crash in range(2):  # a crash loop
                await serve.start()
                async with httpx.AsyncClient(base_url=serve.url, headers={"X-API-Key": ADMIN}) as c:
                    assert await day_used(c) >= 3
                    await outcomes(c, 2)
                await asyncio.sleep(0.5)
                serve.kill()
        finally:
            serve.stop()
        # Four a day, however often the process died.
        assert sim.stats()["providers"]["newsapi"]["requests"] == 4
