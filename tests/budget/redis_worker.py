"""A separate process hammering one shared Redis budget, for the concurrency test.

Run: python -m tests.budget.redis_worker '<json options>'. It connects, prints `ready`,
waits for a line on stdin and, when given a barrier key, for every party to reach it in
Redis (so every worker starts at once), fires its acquires with many in
flight, and prints one JSON line: the weights it was allowed and the warnings it got.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from typing import Any

from redis.asyncio import Redis

from apiwatch.budget.gate import BudgetGate
from apiwatch.budget.stores import RedisBudgetStore


async def main(options: dict[str, Any]) -> None:
    client = Redis.from_url(options["url"], max_connections=options["concurrency"] + 2)
    now = float(options["now"])
    gate = BudgetGate(
        options["limits"], RedisBudgetStore(client, prefix=options["prefix"]), clock=lambda: now
    )
    await client.ping()
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if barrier := options.get("barrier"):
        # Stdin reaches the workers one after another; meeting in Redis lines their starts
        # up to within a poll, so none can take the whole budget before another begins.
        await client.incr(barrier)
        while int(await client.get(barrier) or 0) < options["parties"]:
            await asyncio.sleep(0.0005)

    rng = random.Random(options["seed"])
    weights = [rng.choice(options["weights"]) for _ in range(options["requests"])]
    in_flight = asyncio.Semaphore(options["concurrency"])

    async def one(weight: int) -> tuple[int, bool, list[str]]:
        async with in_flight:
            decision = await gate.acquire(options["provider"], weight)
        return weight, decision.allowed, [w.window for w in decision.warnings]

    results = await asyncio.gather(*(one(w) for w in weights))
    await client.aclose()
    print(
        json.dumps(
            {
                "allowed_weight": sum(w for w, ok, _ in results if ok),
                "allowed": sum(1 for _, ok, _ in results if ok),
                "refused": sum(1 for _, ok, _ in results if not ok),
                "warnings": [window for _, _, ws in results for window in ws],
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
