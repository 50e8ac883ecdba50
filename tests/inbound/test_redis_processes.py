"""Limits shared through Redis: two uvicorn server processes on their own ports, one key,
and their combined requests stop exactly at the key's limit."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REDIS_URL

ROOT = Path(__file__).resolve().parents[2]
KEY = "aw_two-process-test-key-0000000000000000000"
LIMIT = 12


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def two_servers(redis_client: Any, redis_prefix: str) -> Iterator[list[str]]:
    """Two server processes sharing the Redis key prefix; their base URLs."""
    env = {
        **os.environ,
        "INBOUND_TEST_REDIS": REDIS_URL,
        "INBOUND_TEST_PREFIX": redis_prefix,
        "INBOUND_TEST_KEY": KEY,
        # The hour window, so a run that crosses a minute boundary still counts in one window.
        "INBOUND_TEST_LIMITS": f"1000,{LIMIT},10000",
    }
    ports = [free_port(), free_port()]
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "tests.inbound.redis_app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for port in ports
    ]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        deadline = time.monotonic() + 30
        for process, url in zip(processes, urls, strict=True):
            while True:
                if process.poll() is not None:
                    output = process.stdout.read().decode() if process.stdout else ""
                    pytest.fail(f"server exited early: {output}")
                try:
                    # /healthz is not a route here, so this costs no quota: any answer will do.
                    httpx.get(f"{url}/healthz", timeout=1)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        pytest.fail("server did not start within 30 s")
                    time.sleep(0.05)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout:
                process.stdout.close()


async def test_two_processes_stop_one_keys_combined_requests_at_its_limit(
    two_servers: list[str],
) -> None:
    # Skip the last seconds of an hour: the hour window would reset in the middle.
    if 3600 - time.time() % 3600 < 5:
        await asyncio.sleep(3600 - time.time() % 3600 + 0.5)
    async with httpx.AsyncClient(headers={"X-API-Key": KEY}, timeout=10) as client:
        # Half the quota one by one, alternating servers; then a burst at both at once.
        responses = [await client.get(f"{two_servers[i % 2]}/api/ping") for i in range(LIMIT // 2)]
        responses += await asyncio.gather(
            *(client.get(f"{two_servers[i % 2]}/api/ping") for i in range(LIMIT + LIMIT // 2))
        )
        after = await client.get(f"{two_servers[0]}/api/ping")
    allowed = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 429]
    assert len(allowed) == LIMIT and len(refused) == LIMIT
    # Both processes served some, and every allowed answer saw a different count.
    assert len({r.json()["pid"] for r in allowed}) == 2
    remaining = sorted(int(r.headers["X-RateLimit-Hour-Remaining"]) for r in allowed)
    assert remaining == list(range(LIMIT))
    assert after.status_code == 429
    assert after.json()["detail"].startswith("Rate limit exceeded for hour. Try again in ")
