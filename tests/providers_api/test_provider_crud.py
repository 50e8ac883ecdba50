"""Providers added, changed, disabled and deleted through the API on a running server
(SQLite and PostgreSQL), probed against the simulator without a restart."""

from __future__ import annotations

from typing import Any

import pytest

from tests.providers_api.conftest import binance_like, wait_for

# Whole-file wall clock for the test processes' ordering (tests/conftest.py).
pytestmark = pytest.mark.slow(21)


async def _checked(server: Any, provider_id: str) -> Any:
    response = await server.client.get(f"/api/providers/{provider_id}")
    body = response.json()
    return body if response.status_code == 200 and body["last_checked_at"] else None


async def test_added_provider_is_probed_without_restart_and_shows_its_results(
    start_server: Any,
) -> None:
    async with start_server() as server:
        spec = binance_like(server.sim.url, "added", health_interval_s=1)
        created = await server.client.post("/api/providers", json=spec)
        assert created.status_code == 201, created.text
        assert created.json()["source"] == "api"
        detail = await wait_for(lambda: _checked(server, "added"))
        assert detail["source"] == "api"
        assert detail["last_outcome"] == "ok"
        listing = (await server.client.get("/api/providers")).json()
        sources = {row["id"]: row["source"] for row in listing}
        assert sources == {"filed": "file", "added": "api"}
        # Listed again after a restart: loaded from the database, merged with the files.
    async with start_server(keep=True) as again:
        listing = (await again.client.get("/api/providers")).json()
        assert {row["id"]: row["source"] for row in listing} == {"filed": "file", "added": "api"}


async def test_changed_interval_and_limits_take_effect_and_disable_stops_probing(
    start_server: Any,
) -> None:
    async with start_server() as server:
        spec = binance_like(server.sim.url, "tuned")
        assert (await server.client.post("/api/providers", json=spec)).status_code == 201
        runtime = server.runtime
        assert runtime.scheduler.jobs()["health:tuned"].interval_s == 3600.0
        patched = await server.client.patch(
            "/api/providers/tuned",
            json={"health_interval_s": 2, "rate_limits": {"per_minute": 7}},
        )
        assert patched.status_code == 200, patched.text
        assert runtime.scheduler.jobs()["health:tuned"].interval_s == 2.0
        # The budget gate counts against the new limit: the snapshot shows 7 a minute.
        await wait_for(lambda: _checked(server, "tuned"))
        budgets = await runtime.engine.guard.gate.snapshot("tuned")
        minute = next(u for u in budgets if u.window == "minute")
        assert minute.limit == 7 and minute.used >= 1
        disabled = await server.client.patch("/api/providers/tuned", json={"enabled": False})
        assert disabled.json()["spec"]["enabled"] is False
        assert "health:tuned" not in runtime.scheduler.jobs()
        detail = (await server.client.get("/api/providers/tuned")).json()
        assert detail["enabled"] is False


async def test_delete_removes_the_provider_and_its_schedule(start_server: Any) -> None:
    async with start_server() as server:
        spec = binance_like(server.sim.url, "gone")
        assert (await server.client.post("/api/providers", json=spec)).status_code == 201
        assert "health:gone" in server.runtime.scheduler.jobs()
        deleted = await server.client.delete("/api/providers/gone")
        assert deleted.status_code == 200 and deleted.json() == {"id": "gone", "source": None}
        assert "health:gone" not in server.runtime.scheduler.jobs()
        assert (await server.client.get("/api/providers/gone")).status_code == 404
        assert (await server.client.delete("/api/providers/gone")).status_code == 404
        history = (await server.client.get("/api/providers/gone/changes")).json()
        assert [row["action"] for row in history] == ["delete", "create"]


async def test_file_providers_are_read_only_without_overrides(start_server: Any) -> None:
    async with start_server() as server:
        spec = binance_like(server.sim.url, "filed")
        for answer in (
            await server.client.post("/api/providers", json=spec),
            await server.client.put("/api/providers/filed", json=spec),
            await server.client.patch("/api/providers/filed", json={"enabled": False}),
            await server.client.delete("/api/providers/filed"),
        ):
            assert answer.status_code == 409, answer.text
            assert "catalogue file" in answer.json()["detail"]
        assert "APIWATCH_PROVIDER_OVERRIDES" in answer.json()["detail"] or "file" in answer.text
        assert server.runtime.catalogue.providers["filed"].enabled is True


async def test_with_overrides_the_stored_definition_wins_and_delete_restores_the_file(
    start_server: Any,
) -> None:
    async with start_server(provider_overrides=True) as server:
        patched = await server.client.patch(
            "/api/providers/filed", json={"name": "Filed, overridden"}
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["source"] == "api-override"
        detail = (await server.client.get("/api/providers/filed")).json()
        assert detail["source"] == "api-override" and detail["name"] == "Filed, overridden"
        # A file provider still cannot be deleted; the override can, and the file returns.
        restored = await server.client.delete("/api/providers/filed")
        assert restored.json() == {"id": "filed", "source": "file"}
        detail = (await server.client.get("/api/providers/filed")).json()
        assert detail["source"] == "file" and detail["name"] == "Filed"
        refused = await server.client.delete("/api/providers/filed")
        assert refused.status_code == 409


async def test_history_names_the_key_and_the_changed_fields(start_server: Any) -> None:
    async with start_server() as server:
        spec = binance_like(server.sim.url, "watched")
        await server.client.post("/api/providers", json=spec)
        await server.client.patch("/api/providers/watched", json={"timeout_s": 3})
        history = (await server.client.get("/api/providers/watched/changes")).json()
        latest, first = history
        assert latest["action"] == "patch" and first["action"] == "create"
        assert latest["key_name"] and latest["key_id"] is not None
        assert latest["diff"] == [{"path": "timeout_s", "before": None, "after": 3.0}]
        assert latest["before"]["name"] == "Provider watched"
        assert "aw_" not in str(history)  # the key itself is never stored


async def test_validation_errors_name_the_field(start_server: Any) -> None:
    async with start_server() as server:
        spec = binance_like(server.sim.url, "bad")
        wrong_type = {**spec, "timeout_s": "fast"}
        answer = await server.client.post("/api/providers", json=wrong_type)
        assert answer.status_code == 422
        assert answer.json()["detail"][0]["loc"] == ["body", "timeout_s"]
        two_subjects = {
            **spec,
            "health": {"path": "/x", "expect": [{"status": 200, "body": "json"}]},
        }
        answer = await server.client.post("/api/providers", json=two_subjects)
        assert answer.status_code == 400
        assert answer.json()["detail"].startswith("health.expect.0: a check needs exactly one")
        bad_path = {**spec, "health": {"path": "no-slash"}}
        answer = await server.client.post("/api/providers", json=bad_path)
        assert answer.status_code == 400 and "health.path" in answer.json()["detail"]
        mismatch = await server.client.put(
            "/api/providers/filed", json=binance_like(server.sim.url, "other")
        )
        assert mismatch.status_code == 400 and "id" in mismatch.json()["detail"]
        assert (await server.client.get("/api/providers/bad")).status_code == 404


async def test_what_cannot_run_is_refused_with_its_field(start_server: Any) -> None:
    async with start_server() as server:
        spec = binance_like(
            server.sim.url,
            "collects",
            endpoints={"ticker": {"path": "/api/v3/ticker", "collector": "no.such"}},
        )
        answer = await server.client.post("/api/providers", json=spec)
        assert answer.status_code == 400
        assert answer.json()["detail"].startswith("endpoints.ticker.collector: unknown collector")
        assert "collects" not in server.runtime.catalogue.providers
        assert (await server.client.get("/api/providers/collects/changes")).status_code == 404


async def test_a_data_endpoint_gets_a_collection_schedule_and_loses_it_on_delete(
    start_server: Any,
) -> None:
    async with start_server(collection_enabled=True) as server:
        endpoints = {
            "ticker_24hr": {
                "path": "/api/v3/ticker/24hr",
                "params": {"symbols": '["BTCUSDT"]'},
                "collector": "market.binance_ticker_24hr",
            }
        }
        spec = binance_like(server.sim.url, "collected", endpoints=endpoints)
        assert (await server.client.post("/api/providers", json=spec)).status_code == 201
        assert "collect:collected" in server.runtime.scheduler.jobs()
        schedules = (await server.client.get("/api/schedule")).json()
        assert "collected" in str(schedules)
        # Limits that allow one run a minute raise the interval to what the budget allows.
        await server.client.patch(
            "/api/providers/collected", json={"rate_limits": {"per_hour": 20}}
        )
        state = server.runtime.collection.schedules["collected"]
        assert state.interval_s >= 3600 / (0.8 * 20)
        assert server.runtime.scheduler.jobs()["collect:collected"].interval_s == state.interval_s
        await server.client.delete("/api/providers/collected")
        assert "collect:collected" not in server.runtime.scheduler.jobs()


async def test_an_override_kept_while_overrides_are_off_is_not_used(start_server: Any) -> None:
    async with start_server(provider_overrides=True) as server:
        await server.client.patch("/api/providers/filed", json={"name": "Overridden"})
    async with start_server(keep=True) as closed:
        detail = (await closed.client.get("/api/providers/filed")).json()
        assert detail["source"] == "file" and detail["name"] == "Filed"
        # The stored override stays, read-only now like the file it would override.
        assert (await closed.client.delete("/api/providers/filed")).status_code == 409
    async with start_server(keep=True, provider_overrides=True) as opened:
        detail = (await opened.client.get("/api/providers/filed")).json()
        assert detail["source"] == "api-override" and detail["name"] == "Overridden"


async def test_a_deleted_or_disabled_provider_has_its_firing_alerts_resolved(
    start_server: Any,
) -> None:
    """Nothing would ever resolve the alerts of a provider that is no longer probed: they
    are resolved when it is deleted or disabled, and not repeated for good."""
    async with start_server() as server:
        client = server.client
        for pid in ("gone", "paused"):
            spec = binance_like(
                server.sim.url,
                pid,
                health_interval_s=1,
                health={"path": "/api/v3/nowhere", "expect": [{"status": 200}]},
            )
            assert (await client.post("/api/providers", json=spec)).status_code == 201

        async def firing(pid: str) -> list[dict[str, Any]]:
            response = await client.get("/api/alerts", params={"provider": pid})
            return response.json()["alerts"]

        for pid in ("gone", "paused"):
            await wait_for(lambda pid=pid: firing(pid))
        assert (await client.delete("/api/providers/gone")).status_code == 200
        patched = await client.patch("/api/providers/paused", json={"enabled": False})
        assert patched.status_code == 200
        for pid in ("gone", "paused"):
            assert await firing(pid) == []
            past = (await client.get("/api/alerts/history", params={"provider": pid})).json()
            assert past["alerts"] and all(a["state"] == "resolved" for a in past["alerts"])
            assert not [
                a for a in server.runtime.alerts.policy.active() if a.notice.provider == pid
            ]
