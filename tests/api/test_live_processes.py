"""The live feed across processes: two real `apiwatch serve` processes on their own ports and
databases, sharing the real Redis; what one probes reaches the other's WebSocket clients."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from apiwatch.simulator import Scenario, Simulator
from tests.api.test_api import ADMIN_KEY, KEYED
from tests.conftest import REDIS_URL
from tests.inbound.test_redis_processes import free_port

APIWATCH = str(Path(sys.executable).with_name("apiwatch"))


async def _start(
    tmp: Path, name: str, env: dict[str, str], role: str
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [APIWATCH, "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp,
        env={
            **env,
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp / name}.db",
            "APIWATCH_ROLE": role,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient() as client:
        while True:
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"apiwatch {name} exited early: {output[-3000:]}")
            try:
                if (await client.get(f"{url}/healthz", timeout=1)).status_code == 200:
                    return process, url
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"apiwatch {name} did not start within 60 s")
            await asyncio.sleep(0.1)


@pytest.fixture
async def two_processes(
    tmp_path: Path, redis_prefix: str
) -> AsyncIterator[tuple[str, str, Simulator]]:
    """An API process (`--role api`: it probes nothing) and a full apiwatch process that
    the test makes probe, on one Redis channel (each its own database, so its own cluster:
    the two share nothing but the feed)."""
    async with Simulator(port=0) as sim:
        env = {
            **os.environ,
            **KEYED,
            "REDIS_URL": REDIS_URL,
            # Budgets and breaker state of their own (deleted after the test), not those other
            # runs left in the shared Redis.
            "APIWATCH_REDIS_PREFIX": redis_prefix,
            "APIWATCH_LIVE_REDIS_CHANNEL": f"{redis_prefix}live",
            "APIWATCH_ADMIN_KEY": ADMIN_KEY,
            "APIWATCH_UPSTREAM_OVERRIDE": sim.url,
            "APIWATCH_SCHEDULER_ENABLED": "false",
            "APIWATCH_COLLECTION_ENABLED": "false",
            "APIWATCH_LOG_LEVEL": "WARNING",
        }
        processes: list[tuple[subprocess.Popen[bytes], str]] = []
        try:
            # Started side by side: on a loaded machine one start alone can take seconds.
            processes = list(
                await asyncio.gather(
                    _start(tmp_path, "api", env, "api"), _start(tmp_path, "worker", env, "all")
                )
            )
            yield processes[0][1], processes[1][1], sim
        finally:
            for process, _ in processes:
                process.terminate()
            for process, _ in processes:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()


def _instant(text: str) -> datetime:
    """An RFC 3339 time to the millisecond (the feed's precision)."""
    moment = datetime.fromisoformat(text)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


async def _status_update(api: str, headers: dict[str, str]) -> dict[str, Any]:
    """The `status_update` a client connecting to the API process now gets first."""
    # A snapshot is reused for a second (many clients connecting at once): a newer one.
    await asyncio.sleep(1.1)
    url = api.replace("http://", "ws://") + "/ws/live?types=status_update"
    async with websockets.connect(url, additional_headers=headers) as ws:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert msg["type"] == "status_update"
    return dict(msg["data"])


async def test_an_api_process_shows_a_worker_process_attempts_changes_and_alerts_once(
    two_processes: tuple[str, str, Simulator],
) -> None:
    api, worker, sim = two_processes
    ws_url = api.replace("http://", "ws://") + "/ws/live?types=new_log_entry,provider_status_change"
    headers = {"X-API-Key": ADMIN_KEY}
    async with (
        websockets.connect(ws_url, additional_headers=headers) as ws,
        httpx.AsyncClient(headers=headers, timeout=30) as client,
    ):
        ran = await client.post(f"{worker}/api/schedule/trigger", json={"provider": "binance"})
        assert ran.status_code == 200, ran.text
        got: dict[str, dict[str, Any]] = {}
        async with asyncio.timeout(10):
            while len(got) < 2:
                msg = json.loads(await ws.recv())
                got.setdefault(msg["type"], msg)
        # The API process never probed binance (no attempt counted in its metrics), yet it
        # shows binance online: it adopted the worker's status change.
        own = (await client.get(f"{api}/api/providers/binance")).json()
        own_metrics = (await client.get(f"{api}/metrics")).text
    entry = got["new_log_entry"]["data"]
    assert entry["provider"] == "binance"
    assert entry["outcome"] == "ok"
    change = got["provider_status_change"]["data"]
    assert (change["provider"], change["from"], change["to"]) == ("binance", "unknown", "online")
    assert own["status"] == "online"
    # ... and the worker's latest result as binance's last latency and outcome (its own
    # REST API and the feed's `status_update` alike), and its check time as the last one.
    assert (own["last_outcome"], own["last_latency_ms"]) == ("ok", entry["latency_ms"])
    assert own["last_checked_at"] is not None
    assert _instant(own["last_checked_at"]) == _instant(entry["started_at"])
    update = await _status_update(api, headers)
    shown = next(p for p in update["providers"] if p["id"] == "binance")
    assert (shown["status"], shown["last_outcome"]) == ("online", "ok")
    assert shown["last_latency_ms"] == entry["latency_ms"]
    assert shown["last_check_at"] == entry["started_at"]
    assert update["last_check_at"] == entry["started_at"]
    probed = [line for line in own_metrics.splitlines() if line.startswith("apiwatch_probes_total")]
    assert not [line for line in probed if 'provider="binance"' in line], probed
    # Its metrics show the adopted status, and no breakers or keys: it has none of its own.
    assert 'apiwatch_provider_status{provider="binance",status="online"} 1.0' in own_metrics
    assert not [line for line in own_metrics.splitlines() if line.startswith("apiwatch_circuit")]

    # A process's own messages reach its clients once: from its bus, not again via Redis.
    ws_url = worker.replace("http://", "ws://") + "/ws/live?types=new_log_entry&provider=coingecko"
    async with (
        websockets.connect(ws_url, additional_headers=headers) as ws,
        httpx.AsyncClient(headers=headers, timeout=30) as client,
    ):
        await client.post(f"{worker}/api/schedule/trigger", json={"provider": "coingecko"})
        first = json.loads(await asyncio.wait_for(ws.recv(), 10))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 1.0)
    assert first["data"]["provider"] == "coingecko"

    # Alerts cross too (checked here: starting two processes again costs ~20 s).
    await _an_alert_crosses(api, worker, sim)


async def _an_alert_crosses(api: str, worker: str, sim: Simulator) -> None:
    """An alert fired by the worker process reaches a client of the API process."""
    ws_url = api.replace("http://", "ws://") + "/ws/live?types=alert&provider=binance"
    headers = {"X-API-Key": ADMIN_KEY}
    sim.set_scenario("binance", Scenario("down", {"status": 503}))
    async with (
        websockets.connect(ws_url, additional_headers=headers) as ws,
        httpx.AsyncClient(headers=headers, timeout=30) as client,
    ):
        for _ in range(3):  # offline after three failed checks: the critical alert fires
            ran = await client.post(f"{worker}/api/schedule/trigger", json={"provider": "binance"})
            assert ran.status_code == 200, ran.text
        async with asyncio.timeout(15):
            while True:
                fired = json.loads(await ws.recv())
                if fired["data"]["severity"] == "critical":
                    break
        on_worker = (await client.get(f"{worker}/api/alerts")).json()
        on_api = (await client.get(f"{api}/api/alerts")).json()
    assert fired["type"] == "alert"
    assert fired["data"]["state"] == "firing"
    assert (fired["data"]["rule"], fired["data"]["provider"]) == ("provider_status", "binance")
    # The alert is the worker's (stored in its database); the API process, which judges
    # nothing, fired none of its own.
    assert fired["data"]["id"] in [a["id"] for a in _items(on_worker)]
    assert _items(on_api) == []


def _items(body: dict[str, Any]) -> list[dict[str, Any]]:
    return list(body["alerts"])
