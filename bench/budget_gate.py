"""Budget gate cost: `BudgetGate.acquire` per call with the memory store and with Redis.

Run: .venv/bin/python bench/budget_gate.py [--calls 20000] [--redis-calls 2000] [--rounds 5]

Every call is allowed (limits far above the calls made), which is the path every probe
takes. The provider has three windows (second, minute, day), like Etherscan's catalogue
entry; the tiered rows add an endpoint tier with a 2 s window, as OKX's endpoints have, so
one acquire checks and counts both tiers. Redis is measured one call at a time (the
latency a single probe pays) and with 50 in flight (the throughput a busy engine gets),
beside a bare PING for reference. Rounds are interleaved; medians are shown. Redis is the
server at APIWATCH_BENCH_REDIS_URL (default redis://127.0.0.1:6379/0); its rows are left
out, with the reason, when it is unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from apiwatch.budget.gate import BudgetGate
from apiwatch.budget.stores import MemoryBudgetStore, RedisBudgetStore

REDIS_URL = os.environ.get("APIWATCH_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
LIMITS = {"etherscan": {"second": 10**9, "minute": 10**9, "day": 10**9}}
ENDPOINT_LIMITS = {"etherscan": {"gas_oracle": {"2s": 10**9}}}


async def sequential(gate: BudgetGate, calls: int, endpoint: str | None = None) -> float:
    """Seconds per call, one call at a time."""
    start = time.perf_counter()
    for _ in range(calls):
        decision = await gate.acquire("etherscan", endpoint=endpoint)
        assert decision.allowed
    return (time.perf_counter() - start) / calls


async def concurrent(gate: BudgetGate, calls: int, in_flight: int = 50) -> float:
    """Seconds per call, amortised, with `in_flight` calls outstanding."""

    async def worker(share: int) -> None:
        for _ in range(share):
            decision = await gate.acquire("etherscan")
            assert decision.allowed

    start = time.perf_counter()
    await asyncio.gather(*(worker(calls // in_flight) for _ in range(in_flight)))
    return (time.perf_counter() - start) / (calls // in_flight * in_flight)


async def pings(client: Any, calls: int) -> float:
    """Seconds per bare PING: the round trip any Redis-backed gate pays at least."""
    start = time.perf_counter()
    for _ in range(calls):
        await client.ping()
    return (time.perf_counter() - start) / calls


async def main(args: argparse.Namespace) -> None:
    cases: dict[str, Callable[[], Awaitable[float]]] = {}
    memory_gate = BudgetGate(LIMITS, MemoryBudgetStore())
    cases["memory, sequential"] = lambda: sequential(memory_gate, args.calls)
    tiered_gate = BudgetGate(LIMITS, MemoryBudgetStore(), endpoint_limits=ENDPOINT_LIMITS)
    cases["memory, two tiers"] = lambda: sequential(tiered_gate, args.calls, "gas_oracle")

    client = None
    prefix = f"apiwatch:bench:budget:{uuid.uuid4().hex}:"
    note = ""
    try:
        from redis.asyncio import Redis

        client = Redis.from_url(REDIS_URL, socket_connect_timeout=1)
        await client.ping()
    except Exception as error:  # any failure only drops the Redis rows
        note = f"Redis rows left out: {REDIS_URL} unusable ({error!r})"
        client = None
    if client is not None:
        redis_gate = BudgetGate(LIMITS, RedisBudgetStore(client, prefix=prefix))
        cases["redis, sequential"] = lambda: sequential(redis_gate, args.redis_calls)
        redis_tiered = BudgetGate(
            LIMITS, RedisBudgetStore(client, prefix=prefix), endpoint_limits=ENDPOINT_LIMITS
        )
        cases["redis, two tiers"] = lambda: sequential(redis_tiered, args.redis_calls, "gas_oracle")
        cases["redis, 50 in flight"] = lambda: concurrent(redis_gate, args.redis_calls)
        cases["redis PING (reference)"] = lambda: pings(client, args.redis_calls)

    try:
        for run in cases.values():  # warm up: script load, connections, caches
            await run()
        samples: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.rounds):
            for name, run in cases.items():
                samples[name].append(await run())
    finally:
        if client is not None:
            keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()

    print(f"BudgetGate.acquire, 3 windows, median of {args.rounds} rounds")
    print(f"| {'store':<22} | {'µs per call':>12} | {'calls/s':>10} |")
    print(f"|{'-' * 24}|{'-' * 13}:|{'-' * 11}:|")
    for name, values in samples.items():
        per_call = statistics.median(values)
        print(f"| {name:<22} | {per_call * 1e6:>12.1f} | {1 / per_call:>10,.0f} |")
    if note:
        print(note)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000, help="memory calls per round")
    parser.add_argument("--redis-calls", type=int, default=2_000, help="Redis calls per round")
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    try:
        import uvloop  # the loop apiwatch runs on where available
    except ImportError:
        asyncio.run(main(options))
    else:
        uvloop.run(main(options))
