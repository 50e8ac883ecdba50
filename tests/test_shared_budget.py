"""Two apiwatch processes share one provider budget through the real Redis server."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path

import pytest

from apiwatch.simulator import Simulator
from tests.conftest import REDIS_URL

LIMIT = 12


@pytest.fixture
async def redis_url(redis_client) -> str:
    """The test Redis (skipped when unreachable, a failure under CI=true), as a URL."""
    return REDIS_URL


async def run_check(env: dict[str, str]) -> list[dict]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "apiwatch.cli",
        "check",
        env["PROVIDER"],
        "--json",
        "--health-only",
        "--repeat",
        env.get("REPEAT", "20"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **env},
        cwd=Path(__file__).parent,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode in (0, 1), err.decode()
    return [json.loads(line) for line in out.decode().splitlines()]


async def test_two_processes_together_stay_within_the_providers_limit(
    redis_url: str, tmp_path: Path
) -> None:
    # A provider id of its own, so no other run's counts share its Redis keys.
    pid = f"budget_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{pid}.yaml").write_text(
        f"id: {pid}\nname: Budget test\ncategory: market_data\n"
        "base_url: https://api.binance.com\n"
        f"rate_limits: {{per_hour: {LIMIT}}}\n"
        "health:\n  path: /api/v3/ping\n  expect: [{status: 404}]\n"
    )
    async with Simulator(port=0, providers=["binance", pid]) as sim:
        env = {
            "PROVIDER": pid,
            "REDIS_URL": redis_url,
            "APIWATCH_UPSTREAM_OVERRIDE": sim.url,
            "APIWATCH_CATALOGUE_DIR": str(tmp_path),
            "APIWATCH_BREAKER_FAILURE_THRESHOLD": "1000",
        }
        await asyncio.gather(run_check(env), run_check(env))
        received = sim.stats()["providers"][pid]["requests"]
    # 2 processes x 20 rounds = 40 wanted; the shared budget let exactly the limit through.
    assert received == LIMIT


async def test_breaker_and_key_status_are_shared_between_processes(
    redis_url: str, tmp_path: Path
) -> None:
    pid = f"shared_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{pid}.yaml").write_text(
        f"id: {pid}\nname: Shared state test\ncategory: blockchain_explorers\n"
        "base_url: https://api.etherscan.io\n"
        "auth: {in: query, name: apikey, keys: [SHARED_KEY_1, SHARED_KEY_2], required: true}\n"
        "health:\n  path: /v2/api\n  params: {chainid: 1, module: stats, action: ethsupply}\n"
    )
    async with Simulator(port=0, providers=["etherscan", pid]) as sim:
        env = {
            "PROVIDER": pid,
            "REDIS_URL": redis_url,
            "APIWATCH_UPSTREAM_OVERRIDE": sim.url,
            "APIWATCH_CATALOGUE_DIR": str(tmp_path),
            "APIWATCH_BREAKER_FAILURE_THRESHOLD": "3",
            "SHARED_KEY_1": "shared-primary-0123456789",
            "SHARED_KEY_2": "shared-backup-0123456789",
        }
        # Process A: every answer is a 404, so its breaker opens after 3 failures.
        first = await run_check({**env, "REPEAT": "3"})
        sent_by_a = sim.stats()["providers"][pid]["requests"]
        # Process B starts afterwards with no memory of its own: it must not send at all.
        second = await run_check({**env, "REPEAT": "1"})
        sent_total = sim.stats()["providers"][pid]["requests"]
    assert [r["outcome"] for r in first] == ["client_error"]  # the last of 3 rounds
    assert sent_by_a == 3
    assert [r["outcome"] for r in second] == ["skipped"]
    assert second[0]["reason"].startswith("circuit_open")
    assert sent_total == 3
