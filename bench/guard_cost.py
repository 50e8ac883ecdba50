"""Cost of the probe guard (breaker + key pool + budget gate, memory store) per probe.

Run: .venv/bin/python bench/guard_cost.py

Calls `admit` then `settle` (with Binance's weight headers to parse) in a loop, no network,
and prints the median µs per probe over several rounds.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from apiwatch.budget.gate import BudgetGate
from apiwatch.budget.keys import KeyPool
from apiwatch.catalogue.loader import load_catalogue
from apiwatch.domain import Outcome, ProbeResult, utcnow
from apiwatch.probe.breaker import CircuitBreaker
from apiwatch.probe.guard import ProbeGuard


async def round_us(n: int) -> float:
    spec = load_catalogue().providers["binance"]
    keys = {"binance": KeyPool("binance", [])}
    guard = ProbeGuard(
        gate=BudgetGate({"binance": {"minute": 10**9}}), breaker=CircuitBreaker(), keys=keys
    )
    result = ProbeResult(
        "binance", "health", Outcome.OK, utcnow(), headers={"x-mbx-used-weight-1m": "5"}
    )
    start = time.perf_counter()
    for _ in range(n):
        await guard.admit(spec, spec.health)
        await guard.settle(spec, None, result, spec.health)
    return (time.perf_counter() - start) / n * 1e6


async def main() -> None:
    rounds = [await round_us(20_000) for _ in range(5)]
    print(f"guard admit+settle (memory): median {statistics.median(rounds):.1f} µs per probe")
    print(f"rounds: {[round(r, 1) for r in rounds]}")


if __name__ == "__main__":
    asyncio.run(main())
