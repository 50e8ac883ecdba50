"""Real apiwatch worker processes for the cluster tests: one simulator per worker (so the
simulators' counters say which worker probed what), the env they run with, and waiting."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from apiwatch.catalogue.loader import load_catalogue
from apiwatch.simulator import Simulator
from tests.conftest import REDIS_URL
from tests.inbound.test_redis_processes import free_port

ROOT = Path(__file__).resolve().parents[2]
APIWATCH = str(Path(sys.executable).with_name("apiwatch"))
HEARTBEAT_S = 1.0
HEALTH_S = 0.5
LEASE_S = 3.0
ADMIN_KEY = "aw_cluster-test-admin-key-000000000000000000"

# The simulator accepts any key; with one, every enabled provider is really probed.
PROVIDER_KEYS = {
    name: f"sim-{name.lower()}-0123456789abcdef"
    for spec in load_catalogue().enabled()
    for name in spec.auth.keys
}


def worker_env(
    database_url: str, upstream: str, worker_id: str, redis_prefix: str, **extra: str
) -> dict[str, str]:
    return {
        **os.environ,
        # Budgets, breakers and the cluster under the test's own prefix: nothing left by
        # another run (a day's quota spent, a breaker open) changes what this one sees.
        "APIWATCH_REDIS_PREFIX": redis_prefix,
        **PROVIDER_KEYS,
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "APIWATCH_UPSTREAM_OVERRIDE": upstream,
        "APIWATCH_WORKER_ID": worker_id,
        "APIWATCH_HEARTBEAT_S": str(HEARTBEAT_S),
        "APIWATCH_LEADER_LEASE_S": str(LEASE_S),
        "APIWATCH_HEALTH_INTERVAL_S": str(HEALTH_S),
        "APIWATCH_COLLECTION_ENABLED": "false",
        "APIWATCH_ADMIN_KEY": ADMIN_KEY,
        "APIWATCH_LOG_LEVEL": "WARNING",
        **extra,
    }


def sustains(spec, per_second: float, seconds: float) -> bool:
    """Whether the provider's budget lets it be probed `per_second` for `seconds`."""
    spans = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "month": 30 * 86400}

    def span(window: str) -> float:  # `minute`, or a window of any length such as `2s`
        return spans.get(window) or float(window.rstrip("s"))

    return all(
        limit >= per_second * min(span(window), seconds)
        for window, limit in spec.rate_limits.windows().items()
    )


def migrate(database_url: str) -> None:
    subprocess.run(
        [APIWATCH, "db", "upgrade"],
        env={**os.environ, "DATABASE_URL": database_url},
        check=True,
        capture_output=True,
    )


def start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [APIWATCH, "serve", "--role", "worker", "--port", str(free_port())],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def start_serving(
    env: dict[str, str], role: str = "api"
) -> tuple[subprocess.Popen[bytes], str]:
    """An `apiwatch serve --role ROLE` process and its base URL, once `/healthz` answers."""
    port = free_port()
    process = subprocess.Popen(
        [APIWATCH, "serve", "--role", role, "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"

    async def up() -> bool:
        if process.poll() is not None:
            pytest.fail(f"{role} exited: {process.stderr.read().decode()[-2000:]}")
        try:
            async with httpx.AsyncClient() as client:
                return (await client.get(f"{url}/healthz", timeout=1)).status_code == 200
        except httpx.TransportError:
            return False

    await wait_for(up, 60, f"the {role} process serving")
    return process, url


def stop_all(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes.values():
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def check_alive(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    for name, process in processes.items():
        if process.poll() is not None and process.returncode != -signal.SIGKILL:
            pytest.fail(f"{name} exited: {process.stderr.read().decode()[-2000:]}")


async def requests_by_provider(sim: Simulator) -> dict[str, int]:
    async with httpx.AsyncClient() as client:
        stats = (await client.get(f"{sim.url}/_control/stats")).json()
    return {provider: entry["requests"] for provider, entry in stats["providers"].items()}


async def set_scenario(sims: list[Simulator], provider: str, scenario: dict) -> None:
    async with httpx.AsyncClient() as client:
        for sim in sims:
            answer = await client.put(f"{sim.url}/_control/scenarios/{provider}", json=scenario)
            answer.raise_for_status()


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float, what: str) -> float:
    start = time.monotonic()
    while not await predicate():
        if time.monotonic() - start > timeout:
            pytest.fail(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.1)
    return time.monotonic() - start


async def delete_cluster_keys(redis_client, prefix: str) -> None:
    keys = [k async for k in redis_client.scan_iter(match=f"{prefix}*")]
    if keys:
        await redis_client.delete(*keys)
