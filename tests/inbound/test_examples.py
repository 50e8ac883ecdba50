"""The examples: the protected example app served by uvicorn, and the Python and
JavaScript clients run against it as programs; they must wait out a 429 and finish."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from examples.client import pause_for, retry_after
from examples.inbound_app import create_app
from tests.inbound.apps import serving

ROOT = Path(__file__).resolve().parents[2]
KEY = "aw_example-tests-key-000000000000000000000000"


def clock_near_minute_end(second: float = 58.0) -> Callable[[], float]:
    """Real time shifted so that it reads `second` seconds into a minute now: the minute
    window of the example app resets a few real seconds after the test starts."""
    offset = (second - time.time() % 60) % 60
    return lambda: time.time() + offset


@pytest.fixture
async def example_url() -> AsyncIterator[str]:
    """The example app (limit 3 a minute), its minute nearly over, the quota used up by
    another client of the same key."""
    app = create_app(api_key=KEY, limits=(3, 1000, 10000), clock=clock_near_minute_end())
    async with serving(app) as url:
        async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": KEY}) as other:
            statuses = [(await other.get("/api/products")).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        yield url


async def run(*command: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *command, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    return process.returncode or 0, output.decode()


async def test_python_client_waits_out_a_429_and_completes(example_url: str) -> None:
    code, output = await run(
        sys.executable, "examples/client.py", "--url", example_url, "--key", KEY, "--requests", "2"
    )
    assert code == 0, output
    summary = json.loads(output.strip().splitlines()[-1])
    assert summary["ok"] == 2 and summary["failed"] == 0
    assert summary["rate_limited"] >= 1
    assert summary["waited_s"] >= 1
    assert "(Retry-After)" in output
    assert "Rate limit exceeded for minute" in output
    async with httpx.AsyncClient(base_url=example_url, headers={"X-API-Key": KEY}) as client:
        usage = (await client.get("/api/usage")).json()
    assert {"method": "GET", "route": "/api/products", "status": 429} in [
        {k: row[k] for k in ("method", "route", "status")} for row in usage
    ]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
async def test_javascript_client_waits_out_a_429_and_completes(example_url: str) -> None:
    code, output = await run(
        "node", "examples/client.js", "--url", example_url, "--key", KEY, "--requests", "2"
    )
    assert code == 0, output
    summary = json.loads(output.strip().splitlines()[-1])
    assert summary["ok"] == 2 and summary["failed"] == 0
    assert summary["rate_limited"] >= 1
    assert "(Retry-After)" in output


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
async def test_javascript_client_is_valid_syntax() -> None:
    code, output = await run("node", "--check", "examples/client.js")
    assert code == 0, output


def rate_headers(minute: tuple[int, int, int], hour: tuple[int, int, int]) -> dict[str, str]:
    headers = {}
    for window, (limit, remaining, reset) in (("minute", minute), ("hour", hour)):
        headers[f"x-ratelimit-{window}-limit"] = str(limit)
        headers[f"x-ratelimit-{window}-remaining"] = str(remaining)
        headers[f"x-ratelimit-{window}-reset"] = str(reset)
    return headers


def test_client_does_not_pause_while_every_window_has_room() -> None:
    assert pause_for(rate_headers((100, 50, 30), (1000, 900, 3000))) == 0


def test_client_spreads_what_is_left_of_a_nearly_used_window_until_its_reset() -> None:
    # 3 of 100 left in the minute, 30 s to go: one request every 7.5 s.
    assert pause_for(rate_headers((100, 3, 30), (1000, 900, 3000))) == 7.5
    # The tightest window wins: the hour has 1 left for 1,000 s.
    assert pause_for(rate_headers((100, 3, 30), (1000, 1, 1000))) == 500


def test_client_waits_retry_after_seconds_or_one_second_without_it() -> None:
    assert retry_after({"retry-after": "17"}) == 17
    assert retry_after({}) == 1
