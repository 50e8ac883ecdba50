"""Several processes on one Redis share one budget and never exceed it together."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from apiwatch.budget.gate import BudgetGate
from apiwatch.budget.stores import RedisBudgetStore
from tests.budget.conftest import T0, FakeClock
from tests.conftest import REDIS_URL, connect_redis

ROOT = Path(__file__).resolve().parents[2]


async def run_workers(options: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Start one process per options, let them all go at once, collect their JSON lines."""
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.budget.redis_worker",
            json.dumps(option),
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for option in options
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), timeout=20)
            if line.strip() != b"ready":
                _, err = await proc.communicate()
                raise AssertionError(f"worker did not start: {line!r} {err.decode()[-2000:]}")
        outputs = await asyncio.wait_for(
            asyncio.gather(*(proc.communicate(b"go\n") for proc in procs)), timeout=30
        )
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    results = []
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()[-2000:]
        results.append(json.loads(out.decode().strip().splitlines()[-1]))
    return results


def worker_options(prefix: str, limits: dict[str, dict[str, int]], **extra: Any) -> dict[str, Any]:
    return {
        "url": REDIS_URL,
        "prefix": prefix,
        "now": T0 + 0.5,  # one fixed moment: every request lands in the same periods
        "limits": limits,
        "provider": "binance",
        "requests": 400,
        "concurrency": 50,
        "weights": [1],
        "seed": 0,
        **extra,
    }


async def used_in_redis(
    client: Any, prefix: str, limits: dict[str, dict[str, int]], window: str
) -> int:
    gate = BudgetGate(limits, RedisBudgetStore(client, prefix=prefix), clock=FakeClock(T0 + 0.5))
    return next(u.used for u in await gate.snapshot("binance") if u.window == window)


async def test_two_processes_take_exactly_the_limit_together_and_warn_once(
    redis_client: Any, redis_prefix: str
) -> None:
    limits = {"binance": {"second": 1_000_000, "minute": 150}}
    competed = []
    # The sums must hold in every run; that both processes got a share (they really
    # competed) is asked of one run in three, since a loaded machine may still start one
    # late enough for the other to take everything.
    for attempt in range(3):
        prefix = f"{redis_prefix}:run{attempt}"
        barrier = {"barrier": f"{prefix}:barrier", "parties": 2}
        results = await run_workers(
            [worker_options(prefix, limits, **barrier), worker_options(prefix, limits, **barrier)]
        )
        assert sum(r["allowed"] for r in results) == 150
        assert sum(r["refused"] for r in results) == 800 - 150
        assert await used_in_redis(redis_client, prefix, limits, "minute") == 150
        warnings = [w for r in results for w in r["warnings"]]
        assert warnings == ["minute"]
        competed.append([r["allowed"] for r in results])
        if all(r["allowed"] > 0 for r in results):
            break
    assert all(competed[-1]), competed  # both really competed


async def test_weighted_requests_from_two_processes_stay_within_the_limit_and_count_only_allowed(
    redis_client: Any, redis_prefix: str
) -> None:
    limits = {"binance": {"minute": 500}}
    results = await run_workers(
        [
            worker_options(redis_prefix, limits, weights=[1, 2, 3, 5, 20], seed=1),
            worker_options(redis_prefix, limits, weights=[1, 2, 3, 5, 20], seed=2),
        ]
    )
    allowed_weight = sum(r["allowed_weight"] for r in results)
    assert allowed_weight <= 500
    assert allowed_weight > 500 - 20  # whatever is left is lighter than the heaviest request
    assert await used_in_redis(redis_client, redis_prefix, limits, "minute") == allowed_weight


async def test_two_clients_in_one_process_share_one_budget(redis_prefix: str) -> None:
    limits = {"binance": {"minute": 120}}
    clients = [await connect_redis(), await connect_redis()]
    try:
        gates = [
            BudgetGate(limits, RedisBudgetStore(c, prefix=redis_prefix), clock=FakeClock())
            for c in clients
        ]
        # Each client's pool holds 100 connections; stay under it, as the engine must.
        in_flight = asyncio.Semaphore(100)

        async def one(gate: BudgetGate) -> bool:
            async with in_flight:
                return (await gate.acquire("binance")).allowed

        decisions = await asyncio.gather(*(one(gates[i % 2]) for i in range(400)))
        assert sum(decisions) == 120
    finally:
        for client in clients:
            await client.aclose()
