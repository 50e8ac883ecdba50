"""Redis dies or hangs under a running apiwatch (a real server over the simulator, its own
redis-server): probing goes on within the local share of each budget, every result is
stored, /healthz and /api/status say degraded with the reason, a `dependency_change` event
is raised, keyed requests stay fast, and all of it recovers by itself."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from apiwatch.settings import Settings
from apiwatch.simulator import Simulator
from apiwatch.storage.models import ConnectionAttempt
from tests.api.test_api import ADMIN_KEY, serve
from tests.faults.servers import OwnRedis


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def monitor(redis_server: OwnRedis, tmp_path: Path) -> AsyncIterator[tuple]:
    async with Simulator(port=0) as sim:
        settings = Settings(
            _env_file=None,
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'redis-outage.db'}",
            redis_url=redis_server.url,
            upstream_override=sim.url,
            recorder_flush_ms=10,
            admin_key=ADMIN_KEY,
            # binance's real limits are generous; a small local share is what is tested.
            budget_local_share=0.25,
            # The key limits are not under test here; the log test sends hundreds a minute.
            api_limit_per_minute=100_000,
        )
        server, task, port = await serve(settings)
        try:
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", timeout=30, headers={"X-API-Key": ADMIN_KEY}
            ) as client:
                yield client, sim, server
        finally:
            server.should_exit = True
            await task


async def trigger(client: httpx.AsyncClient, provider: str = "binance") -> dict:
    response = await client.post("/api/schedule/trigger", json={"provider": provider})
    assert response.status_code == 200, response.text
    return response.json()


async def dependency_events(
    client: httpx.AsyncClient, *, ok: bool, within_s: float = 5.0
) -> list[dict]:
    """The stored redis dependency changes, once one with `ok` is there: events reach the
    database through the recorder's batches, a moment after the change itself."""
    deadline = time.monotonic() + within_s
    while True:
        events = (await client.get("/api/events", params={"kind": "dependency_change"})).json()
        wanted = [e for e in events if e["data"]["dependency"] == "redis" and e["data"]["ok"] is ok]
        if wanted or time.monotonic() > deadline:
            return events
        await asyncio.sleep(0.1)


async def stored(server) -> int:
    runtime = server.config.app.state.runtime
    await runtime.recorder.flush()
    async with runtime.sessions() as session:
        return int(await session.scalar(select(func.count(ConnectionAttempt.id))))


async def test_kill_9_of_redis_keeps_probing_says_degraded_and_recovers(
    monitor: tuple, redis_server: OwnRedis
) -> None:
    client, sim, server = monitor
    ran = await trigger(client)
    assert [r["outcome"] for r in ran["results"]] == ["ok"]
    assert (await client.get("/healthz")).json() == {"status": "ok", "reasons": []}
    rows = await stored(server)

    redis_server.kill()
    before = sim.stats()["providers"]["binance"]["requests"]
    for _ in range(3):
        ran = await trigger(client)
        # Probed for real (not skipped), within the local share of binance's budget.
        assert [r["outcome"] for r in ran["results"]] == ["ok"], ran
    assert sim.stats()["providers"]["binance"]["requests"] == before + 3
    assert await stored(server) == rows + 3  # every result stored

    health = (await client.get("/healthz")).json()
    assert health["status"] == "degraded"
    assert "redis unavailable" in health["reasons"][0]
    assert "budgets counted in this process, 25% of each window" in health["reasons"][0]
    status = (await client.get("/api/status")).json()
    assert status["state"] == "degraded"
    assert status["dependencies"]["redis"]["ok"] is False
    assert status["dependencies"]["database"]["ok"] is True
    assert status["last_check_at"] is not None
    # Rate limits answer (from the local counts), not 500.
    limits = await client.get("/api/rate-limits", params={"provider": "binance"})
    assert limits.status_code == 200, limits.text
    events = await dependency_events(client, ok=False)
    downs = [e for e in events if e["data"]["dependency"] == "redis" and not e["data"]["ok"]]
    assert len(downs) == 1, events  # one event per outage, not one per probe
    await asyncio.sleep(1.5)  # alerting consumes the bus in the background
    alerts = (await client.get("/api/alerts")).json()
    alerts = alerts.get("alerts", alerts) if isinstance(alerts, dict) else alerts
    firing = [a for a in alerts if a["rule"] == "apiwatch_dependency_down"]
    assert [(a["state"], a["severity"]) for a in firing] == [("firing", "critical")], alerts
    assert "redis unavailable" in firing[0]["message"]

    redis_server.start()  # same port: apiwatch reconnects on its own
    await asyncio.sleep(1.1)  # the shared store is retried one second after a failure
    ran = await trigger(client)
    assert [r["outcome"] for r in ran["results"]] == ["ok"]
    health = (await client.get("/healthz")).json()
    assert health == {"status": "ok", "reasons": []}, health
    events = await dependency_events(client, ok=True)
    assert any(e["data"]["dependency"] == "redis" and e["data"]["ok"] for e in events), events
    await asyncio.sleep(1.5)
    active = (await client.get("/api/alerts")).json()
    active = active.get("alerts", active) if isinstance(active, dict) else active
    assert not [a for a in active if a["rule"] == "apiwatch_dependency_down"], active
    past = (await client.get("/api/alerts/history")).json()
    past = past.get("alerts", past) if isinstance(past, dict) else past
    assert [a["state"] for a in past if a["rule"] == "apiwatch_dependency_down"] == ["resolved"]


async def test_a_hung_redis_costs_keyed_requests_milliseconds_not_seconds(
    monitor: tuple, redis_server: OwnRedis
) -> None:
    client, _sim, _server = monitor
    assert (await client.get("/api/providers")).status_code == 200
    redis_server.pause()  # SIGSTOP: connections stay open, nothing answers
    try:
        took = []
        for _ in range(10):
            start = time.perf_counter()
            response = await client.get("/api/providers")
            took.append(time.perf_counter() - start)
            assert response.status_code == 200, response.text
        ran = await trigger(client)
        assert [r["outcome"] for r in ran["results"]] == ["ok"]
    finally:
        redis_server.resume()
    # The first request pays one timeout (250 ms); the others are counted locally at once.
    assert max(took) < 1.5, took
    assert sorted(took)[len(took) // 2] < 0.2, took
    health = (await client.get("/healthz")).json()
    assert health["status"] == "degraded", health


async def test_the_log_stays_bounded_while_redis_is_away_under_traffic(
    monitor: tuple,
    redis_server: OwnRedis,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Hundreds of keyed requests and failed keys over several retry periods (the shared
    limiter is retried once a second): one line says the limiter storage went, none per
    request or retry (it logged a warning each second, and one per failed key in them)."""
    client, _sim, server = monitor
    url = str(client.base_url)
    assert (await client.get("/api/status")).status_code == 200
    caplog.set_level(logging.WARNING)
    capsys.readouterr()  # structlog's lines so far
    redis_server.kill()
    statuses: list[int] = []
    async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": "aw_wrong"}) as guesser:
        deadline = time.monotonic() + 3.5
        while time.monotonic() < deadline:  # more than three retry periods
            batch = [client.get("/api/status") for _ in range(20)]
            batch.append(guesser.get("/api/status"))
            statuses += [r.status_code for r in await asyncio.gather(*batch)]
    assert statuses.count(200) >= 100, len(statuses)
    assert 401 in statuses  # failed keys were checked (and counted locally) too
    lines = [
        (r.name, r.getMessage())
        for r in caplog.records
        if r.name.startswith("apiwatch") and r.levelno >= logging.WARNING
    ]
    inbound = [message for _name, message in lines if "inbound limiter storage" in message]
    assert len(inbound) == 1, inbound
    assert inbound[0].startswith("inbound limiter storage unavailable: ConnectionError")
    assert "key limits and failed keys counted in this process" in inbound[0]
    # structlog's warnings and errors (the relays' listeners, the cluster) as well.
    lines += [
        ("structlog", line)
        for line in capsys.readouterr().out.splitlines()
        if "[warning" in line or "[error" in line
    ]
    # Everything apiwatch said in 3.5 s of an outage: a line or two per part, not per call.
    assert len(lines) <= 6, lines
    counting = server.config.app.middleware_stack
    while not hasattr(counting, "counting"):
        counting = counting.app
    storage = counting.counting.storage
    assert storage.ok is False
    assert storage.failures >= 3  # retried each second, quietly
