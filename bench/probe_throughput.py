"""Probe throughput: apiwatch's probe engine vs a bare aiohttp GET loop, same simulator.

Run: .venv/bin/python bench/probe_throughput.py [--probes 5000] [--concurrency 50]

The simulator runs in its own process so it does not share the event loop being measured.
Reports the median of several interleaved rounds, and the engine/bare ratio, which is
steadier than absolute figures on a noisy 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time

from local_servers import free_port, wait_ready

from apiwatch.budget.gate import BudgetGate
from apiwatch.budget.keys import KeyPool
from apiwatch.catalogue.loader import load_catalogue
from apiwatch.probe.breaker import CircuitBreaker
from apiwatch.probe.client import create_session
from apiwatch.probe.engine import ProbeEngine, build_url
from apiwatch.probe.guard import ProbeGuard


async def bare(url: str, n: int, concurrency: int) -> float:
    limit = asyncio.Semaphore(concurrency)
    async with create_session(connection_limit=concurrency) as http:

        async def one() -> None:
            async with limit, http.get(url) as r:
                await r.read()

        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        return n / (time.perf_counter() - start)


async def engine_rate(override: str, n: int, concurrency: int, *, guarded: bool) -> float:
    spec = load_catalogue().providers["binance"]
    limit = asyncio.Semaphore(concurrency)
    async with create_session(connection_limit=concurrency) as http:
        keys = {"binance": KeyPool("binance", [])}
        # Guarded: breaker + key pool + budget gate (memory), with a budget too large to bind.
        guard = ProbeGuard(
            gate=BudgetGate({"binance": {"minute": 10**9}}), breaker=CircuitBreaker(), keys=keys
        )
        engine = ProbeEngine(
            session=http,
            keys=keys,
            upstream_override=override,
            guard=guard if guarded else None,
        )

        async def one() -> None:
            async with limit:
                results = await engine.probe(spec, "health")
                assert results[-1].outcome.value == "ok", results[-1]

        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        return n / (time.perf_counter() - start)


async def main(args: argparse.Namespace) -> None:
    port = free_port()
    override = f"http://127.0.0.1:{port}"
    sim = subprocess.Popen(
        [sys.executable, "-m", "apiwatch.cli", "simulate", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await wait_ready(override)
        spec = load_catalogue().providers["binance"]
        url = build_url(spec, spec.health, override)
        bare_rates, engine_rates, guarded_rates = [], [], []
        for _ in range(args.rounds):
            bare_rates.append(await bare(url, args.probes, args.concurrency))
            engine_rates.append(
                await engine_rate(override, args.probes, args.concurrency, guarded=False)
            )
            guarded_rates.append(
                await engine_rate(override, args.probes, args.concurrency, guarded=True)
            )
        b, e = statistics.median(bare_rates), statistics.median(engine_rates)
        g = statistics.median(guarded_rates)
        print(
            f"probes per round: {args.probes}, concurrency {args.concurrency}, rounds {args.rounds}"
        )
        print(f"bare aiohttp GET      median {b:8.0f} req/s   {[round(x) for x in bare_rates]}")
        print(f"apiwatch ProbeEngine  median {e:8.0f} probes/s {[round(x) for x in engine_rates]}")
        print(f"engine + guard        median {g:8.0f} probes/s {[round(x) for x in guarded_rates]}")
        print(f"engine / bare ratio   {e / b:.2f}   guarded / bare {g / b:.2f}")
    finally:
        sim.terminate()
        sim.wait(5)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--probes", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    try:
        import uvloop

        uvloop.run(main(parser.parse_args()))
    except ImportError:
        asyncio.run(main(parser.parse_args()))
