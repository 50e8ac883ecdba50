"""GET /ws/live over a real uvicorn server and real WebSocket clients (the `websockets`
library), with the simulator upstream and a SQLite file: auth by header, subprotocol and
query, close codes, message types, filters, subscribe, dropping for slow clients, and the
key kept out of every log line."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import websockets
from fastapi import FastAPI

from apiwatch.api.app import create_app
from apiwatch.domain import Outcome, ProbeResult, Status, StatusChange
from apiwatch.runtime import Runtime
from apiwatch.settings import Settings
from apiwatch.simulator import Scenario, Simulator
from tests.api.test_api import ADMIN_KEY, KEYED

# Whole-file wall clock for the test processes' ordering (tests/conftest.py).
pytestmark = pytest.mark.slow(27)

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Live:
    url: str  # ws://127.0.0.1:PORT/ws/live
    http: httpx.AsyncClient
    sim: Simulator
    runtime: Runtime


async def _serve(app: FastAPI) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    return server, task, server.servers[0].sockets[0].getsockname()[1]


@pytest.fixture
async def live(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> AsyncIterator[Live]:
    for name, value in KEYED.items():
        monkeypatch.setenv(name, value)
    options: dict[str, Any] = getattr(request, "param", {})
    async with Simulator(port=0) as sim:
        settings = Settings(
            _env_file=None,
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'live.db'}",
            upstream_override=sim.url,
            recorder_flush_ms=10,
            admin_key=ADMIN_KEY,
            collection_enabled=False,
            **options,
        )
        app = create_app(settings, start_scheduler=False)
        server, task, port = await _serve(app)
        try:
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", timeout=30, headers={"X-API-Key": ADMIN_KEY}
            ) as http:
                yield Live(f"ws://127.0.0.1:{port}/ws/live", http, sim, app.state.runtime)
        finally:
            server.should_exit = True
            await task


def connect(url: str, key: str | None = ADMIN_KEY, **options: Any) -> Any:
    headers = {"X-API-Key": key} if key else None
    return websockets.connect(url, additional_headers=headers, **options)


async def recv(ws: Any, timeout: float = 10.0) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def until(ws: Any, kind: str, timeout: float = 10.0) -> dict[str, Any]:
    """The next message of type `kind`, skipping others."""
    async with asyncio.timeout(timeout):
        while True:
            msg = await recv(ws, timeout)
            if msg["type"] == kind:
                return msg


async def closed_with(ws: Any) -> tuple[int | None, str | None]:
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), 10)
    return ws.close_code, ws.close_reason


# -- auth ----------------------------------------------------------------------------------


async def test_a_key_may_come_as_header_subprotocol_entry_or_query_parameter(live: Live) -> None:
    async with connect(live.url) as ws:
        by_header = await recv(ws)
    async with websockets.connect(live.url, subprotocols=["apiwatch", f"apikey.{ADMIN_KEY}"]) as ws:
        by_protocol = await recv(ws)
        chosen = ws.subprotocol
        response_headers = dict(ws.response.headers)
    async with websockets.connect(f"{live.url}?api_key={ADMIN_KEY}") as ws:
        by_query = await recv(ws)
    assert by_header["type"] == by_protocol["type"] == by_query["type"] == "status_update"
    assert chosen == "apiwatch"  # the key entry is never echoed back
    assert ADMIN_KEY not in json.dumps(response_headers)


async def test_missing_and_unknown_keys_close_with_4401_and_inactive_with_4403(
    live: Live,
) -> None:
    async with connect(live.url, key=None) as ws:
        missing = await closed_with(ws)
    async with connect(live.url, key="aw_not-a-key") as ws:
        unknown = await closed_with(ws)
    created = (await live.http.post("/api/keys", json={"name": "r", "scope": "read"})).json()
    await live.http.patch(f"/api/keys/{created['id']}", json={"active": False})
    async with websockets.connect(
        live.url, subprotocols=["apiwatch", f"apikey.{created['key']}"]
    ) as ws:
        chosen = ws.subprotocol  # a browser needs one chosen to see the close code at all
        inactive = await closed_with(ws)
    assert missing == (4401, "Missing API key")
    assert unknown == (4401, "Invalid API key")
    assert inactive == (4403, "API key is inactive")
    assert chosen == "apiwatch"


async def test_the_key_never_reaches_a_log_line(
    live: Live, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with websockets.connect(f"{live.url}?types=status_update&api_key={ADMIN_KEY}") as ws:
        await recv(ws)
    async with websockets.connect(f"{live.url}?api_key=aw_wrong-key-value-1234") as ws:
        await closed_with(ws)
    await live.http.get(f"/healthz?api_key={ADMIN_KEY}")
    await asyncio.sleep(0.2)
    # The test's own clients (httpx, websockets.client) log the URLs they were given.
    clients = ("httpx", "httpcore", "websockets.client")
    lines = [r.getMessage() for r in caplog.records if not r.name.startswith(clients)]
    assert any("WebSocket /ws/live?types=status_update" in line for line in lines), lines
    assert any("/healthz?api_key=***" in line for line in lines), lines
    assert not [line for line in lines if ADMIN_KEY in line or "wrong-key-value" in line]


# -- messages ------------------------------------------------------------------------------


async def test_attempts_and_status_changes_arrive_as_they_are_recorded(live: Live) -> None:
    async with connect(live.url, max_size=None) as ws:
        first = await recv(ws)
        response = await live.http.post("/api/schedule/trigger", json={"provider": "binance"})
        assert response.status_code == 200
        entry = await until(ws, "new_log_entry")
        change = await until(ws, "provider_status_change")
    assert first["type"] == "status_update"
    assert {"counts", "health_score", "providers_enabled", "last_check_at"} <= set(first["data"])
    binance = next(p for p in first["data"]["providers"] if p["id"] == "binance")
    assert binance["status"] == "unknown" and binance["last_outcome"] is None
    assert first["ts"].endswith("Z")
    datetime.fromisoformat(first["ts"])  # RFC 3339
    assert entry["data"]["provider"] == "binance"
    assert entry["data"]["outcome"] == "ok"
    assert entry["data"]["attempt"] == 1
    assert entry["data"]["status_code"] == 200
    assert entry["data"]["latency_ms"] > 0
    assert "key_label" not in entry["data"]
    assert change["data"] == {
        **change["data"],
        "provider": "binance",
        "from": "unknown",
        "to": "online",
    }


def _same_instant(value: Any) -> Any:
    """`value` with every timestamp parsed and cut to milliseconds: the feed writes RFC 3339
    with milliseconds and a `Z`, the REST API ISO 8601 with microseconds; both must name
    the same instant."""
    if isinstance(value, dict):
        return {k: _same_instant(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_same_instant(v) for v in value]
    if isinstance(value, str) and len(value) >= 20 and value[4] == "-" and value[10] == "T":
        moment = datetime.fromisoformat(value)
        return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    return value


# Redis on a port nothing listens on: a real outage of a service apiwatch needs, so that
# `state`, `degraded_reasons` and `dependencies` say something (budgets count locally).
@pytest.mark.parametrize("live", [{"redis_url": "redis://127.0.0.1:9/0"}], indirect=True)
async def test_a_status_update_carries_what_get_api_status_returns(live: Live) -> None:
    await live.http.post("/api/schedule/trigger", json={"provider": "binance"})
    async with connect(live.url) as ws:
        update = await recv(ws)
    status = (await live.http.get("/api/status")).json()
    assert update["type"] == "status_update"
    overall = {k: v for k, v in update["data"].items() if k != "providers"}
    assert set(overall) == set(status)
    assert _same_instant(overall) == _same_instant(status)
    assert status["state"] == "degraded"
    assert status["dependencies"]["redis"]["ok"] is False
    assert status["last_check_at"] is not None
    assert status["counts"]["online"] == 1
    binance = next(p for p in update["data"]["providers"] if p["id"] == "binance")
    assert binance["status"] == "online" and binance["last_outcome"] == "ok"
    assert binance["last_latency_ms"] > 0


@pytest.mark.parametrize(
    "live",
    [{"live_status_interval_s": 0.2, "live_ping_interval_s": 0.3}],
    indirect=True,
)
async def test_status_updates_and_pings_come_on_their_timers(live: Live) -> None:
    await live.http.post("/api/schedule/trigger", json={"provider": "coinmarketcap"})
    async with connect(f"{live.url}?provider=coinmarketcap") as ws:
        await recv(ws)  # the snapshot sent on connecting
        update = await until(ws, "status_update", timeout=3)
        ping = await until(ws, "ping", timeout=3)
    assert [p["id"] for p in update["data"]["providers"]] == ["coinmarketcap"]
    coinmarketcap = update["data"]["providers"][0]
    assert coinmarketcap["status"] == "online"
    assert coinmarketcap["last_outcome"] == "ok"
    assert coinmarketcap["last_latency_ms"] > 0
    assert update["data"]["counts"]["online"] == 1  # the overall picture is not narrowed
    assert ping["data"] == {}


async def test_a_budget_window_at_the_warning_level_and_full_sends_rate_limit_alerts(
    live: Live,
) -> None:
    # coingecko allows 30 requests a minute: the 24th crosses 80 %, the 31st is refused.
    if time.time() % 60 > 55:  # all 31 in one clock minute
        await asyncio.sleep(61 - time.time() % 60)
    async with connect(f"{live.url}?types=rate_limit_alert") as ws:
        for _ in range(31):
            await live.http.post("/api/schedule/trigger", json={"provider": "coingecko"})
        warning = await recv(ws)
        blocked = await recv(ws)
    assert warning["data"] == {
        **warning["data"],
        "provider": "coingecko",
        "level": "warning",
        "window": "minute",
        "used": 24,
        "limit": 30,
    }
    assert blocked["data"] == {
        **blocked["data"],
        "provider": "coingecko",
        "level": "blocked",
        "window": "minute",
        "used": 30,
        "limit": 30,
    }
    assert blocked["data"]["reset_at"].endswith("Z")


async def test_alerts_are_sent_as_they_fire_are_acknowledged_and_resolve(live: Live) -> None:
    async with connect(f"{live.url}?types=alert&provider=binance") as ws:
        live.sim.set_scenario("binance", Scenario("down", {"status": 503}))
        for _ in range(3):
            await live.http.post("/api/schedule/trigger", json={"provider": "binance"})
        critical = None
        while critical is None:
            fired = await recv(ws)
            if fired["data"]["severity"] == "critical" and fired["data"]["state"] == "firing":
                critical = fired
        alert_id = critical["data"]["id"]
        acked = await live.http.post(f"/api/alerts/{alert_id}/acknowledge", json={"by": "ann"})
        assert acked.status_code == 200
        acknowledged = await recv(ws)
        live.sim.set_scenario("binance", Scenario("healthy", {}))
        await live.http.post("/api/schedule/trigger", json={"provider": "binance"})
        resolved = None
        while resolved is None:
            msg = await recv(ws)
            if msg["data"]["id"] == alert_id and msg["data"]["state"] == "resolved":
                resolved = msg
    assert critical["data"]["rule"] == "provider_status"
    assert critical["data"]["provider"] == "binance"
    assert (acknowledged["data"]["id"], acknowledged["data"]["state"]) == (alert_id, "acknowledged")
    assert resolved["data"]["severity"] == "critical"


async def test_type_and_provider_filters_in_the_url_narrow_the_feed(live: Live) -> None:
    url = f"{live.url}?types=provider_status_change&provider=binance&provider=coinmarketcap"
    async with connect(url) as ws:
        await live.http.post("/api/schedule/trigger", json={"provider": "coingecko"})
        await live.http.post("/api/schedule/trigger", json={"provider": "coinmarketcap"})
        got = await recv(ws)
    assert got["type"] == "provider_status_change"  # no status_update, no log entries
    assert got["data"]["provider"] == "coinmarketcap"  # coingecko's change, sent first, is filtered


async def test_a_subscribe_message_replaces_the_filter(live: Live) -> None:
    async with connect(f"{live.url}?types=alert") as ws:
        await ws.send(
            json.dumps({"subscribe": {"types": "new_log_entry", "providers": ["tronscan"]}})
        )
        ack = await until(ws, "subscribed")
        await live.http.post("/api/schedule/trigger", json={"provider": "binance"})
        await live.http.post("/api/schedule/trigger", json={"provider": "tronscan"})
        entry = await recv(ws)
    assert ack["data"] == {"types": ["new_log_entry"], "providers": ["tronscan"]}
    assert (entry["type"], entry["data"]["provider"]) == ("new_log_entry", "tronscan")


async def test_bad_filters_get_an_error_and_a_bad_url_closes_with_4400(live: Live) -> None:
    async with connect(f"{live.url}?types=everything") as ws:
        error = await recv(ws)
        code, reason = await closed_with(ws)
    async with connect(live.url) as ws:
        await recv(ws)
        replies = []
        for bad in ("not json", '{"subscribe": {"providers": ["nope"]}}', '{"hello": 1}'):
            await ws.send(bad)
            replies.append(await until(ws, "error"))
        await ws.send('{"subscribe": {"types": ["ping"]}}')
        still_open = await until(ws, "subscribed")
    assert code == 4400
    assert "unknown type 'everything'" in reason
    assert "status_update" in error["data"]["detail"]
    assert "not JSON" in replies[0]["data"]["detail"]
    assert "unknown provider 'nope'" in replies[1]["data"]["detail"]
    assert "subscribe" in replies[2]["data"]["detail"]
    assert still_open["data"]["types"] == ["ping"]


# -- slow and stuck clients ----------------------------------------------------------------


def _attempt(n: int, reason: str = "") -> ProbeResult:
    return ProbeResult(
        provider="binance",
        endpoint="health",
        outcome=Outcome.OK,
        started_at=datetime.now(UTC),
        latency_ms=float(n),
        status_code=200,
        reason=reason,
    )


@pytest.mark.parametrize("live", [{"live_queue_size": 20}], indirect=True)
async def test_a_client_behind_loses_old_log_entries_and_is_told_never_status_changes(
    live: Live,
) -> None:
    async with connect(live.url) as ws:
        await recv(ws)
        # Published in one go, without yielding: the sender cannot drain in between.
        for n in range(100):
            live.runtime.bus.publish(_attempt(n))
            if n == 50:
                live.runtime.bus.publish(
                    StatusChange(
                        "binance", Status.ONLINE, Status.OFFLINE, "test", datetime.now(UTC)
                    )
                )
        got = [await recv(ws) for _ in range(21)]
    types = [m["type"] for m in got]
    assert types[0] == "dropped"
    assert got[0]["data"]["count"] == 81  # 101 messages into a 20-message outbox
    assert types[1] == "provider_status_change"  # older than every log entry kept
    latencies = [m["data"]["latency_ms"] for m in got if m["type"] == "new_log_entry"]
    assert latencies == [float(n) for n in range(81, 100)]  # the newest were kept


@pytest.mark.parametrize(
    "live", [{"live_queue_size": 50, "live_stuck_after_s": 0.5}], indirect=True
)
async def test_a_stuck_client_is_disconnected_and_the_others_keep_up(live: Live) -> None:
    feed = live.runtime.feed
    # A client that never reads: its socket buffers fill, then its send blocks.
    stuck = await connect(live.url, max_queue=1, max_size=None).__aenter__()
    stuck.transport.pause_reading()
    try:
        async with connect(f"{live.url}?types=provider_status_change") as reader:
            await asyncio.sleep(0.2)
            assert len(feed.connections) == 2
            # Incompressible, and longer than deflate's window: uvicorn compresses frames.
            big = secrets.token_urlsafe(40_000)
            for round_ in range(100):
                for n in range(20):
                    live.runtime.bus.publish(_attempt(round_ * 20 + n, big))
                await asyncio.sleep(0.01)
                if feed.disconnected_stuck:
                    break
            sent = datetime.now(UTC)
            live.runtime.bus.publish(
                StatusChange("tronscan", Status.ONLINE, Status.OFFLINE, "t", sent)
            )
            change = await until(reader, "provider_status_change", timeout=5)
            assert feed.disconnected_stuck == 1
            assert len(feed.connections) == 1
            assert change["data"]["provider"] == "tronscan"
    finally:
        stuck.transport.abort()


# -- the example client --------------------------------------------------------------------


async def _example(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "examples" / "live_status.py"),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_the_example_client_prints_status_changes_and_reports_a_refused_key(
    live: Live,
) -> None:
    feed = live.runtime.feed
    watcher = await _example("--url", live.url, "--key", ADMIN_KEY, "--count", "1")
    async with asyncio.timeout(60):
        while not feed.connections:  # the interpreter may take a while to start
            await asyncio.sleep(0.05)
    await live.http.post("/api/schedule/trigger", json={"provider": "binance"})
    out, err = await asyncio.wait_for(watcher.communicate(), 30)
    refused = await _example("--url", live.url, "--key", "aw_wrong")
    _, refused_err = await asyncio.wait_for(refused.communicate(), 60)
    assert watcher.returncode == 0, err.decode()
    assert "binance" in out.decode() and "unknown -> online" in out.decode()
    assert refused.returncode == 2
    assert "refused: 4401 Invalid API key" in refused_err.decode()
