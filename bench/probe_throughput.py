"""Probe throughput: apiwatch's probe engine vs a bare aiohttp GET loop, same simulator;
and what keeping the Prometheus metrics costs per probe (the engine + guard with every
result handed to the metrics listener, and that listener's own cost in µs per result).

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
from datetime import UTC, datetime

from local_servers import free_port, wait_ready

from apiwatch.budget.gate import BudgetGate
from apiwatch.budget.keys import KeyPool
from apiwatch.catalogue.loader import load_catalogue
from apiwatch.domain import Outcome, ProbeResult
from apiwatch.probe.breaker import CircuitBreaker
from apiwatch.probe.client import create_session
from apiwatch.probe.engine import ProbeEngine, build_url
from apiwatch.probe.guard import ProbeGuard
from apiwatch.runtime.metrics import Metrics


def listener_cost_us(n: int = 200_000) -> float:
    """µs per result in the metrics bus listener (counter, histogram, last success), over
    results of 10 providers x 3 endpoints x 3 outcomes, as a busy monitor sees them."""
    metrics = Metrics()
    now = datetime.now(UTC)
    results = [
        ProbeResult(f"p{i}", f"e{j}", outcome, now, latency_ms=12.5, status_code=200)
        for i in range(10)
        for j in range(3)
        for outcome in (Outcome.OK, Outcome.SERVER_ERROR, Outcome.SKIPPED)
    ]
    for result in results:
        metrics.observe(result)  # label children made once, as in a running monitor
    start = time.perf_counter()
    for k in range(n):
        metrics.observe(results[k % len(results)])
    return (time.perf_counter() - start) / n * 1e6


async def bare(url: str, n: int, concurrency: int) -> float:
    limit = asyncio.Semaphore(concurrency)
    async with create_session(connection_limit=concurrency) as http:

        async def one() -> None:
            async with limit, http.get(url) as r:
                await r.read()

        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        return n / (time.perf_counter() - start)


async def engine_rate(
    override: str, n: int, concurrency: int, *, guarded: bool, metrics: Metrics | None = None
) -> float:
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
                if metrics is not None:
                    for result in results:
                        metrics.observe(result)

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
        bare_rates, engine_rates, guarded_rates, metered_rates = [], [], [], []
        for _ in range(args.rounds):
            bare_rates.append(await bare(url, args.probes, args.concurrency))
            engine_rates.append(
                await engine_rate(override, args.probes, args.concurrency, guarded=False)
            )
            guarded_rates.append(
                await engine_rate(override, args.probes, args.concurrency, guarded=True)
            )
            metered_rates.append(
                await engine_rate(
                    override, args.probes, args.concurrency, guarded=True, metrics=Metrics()
                )
            )
        b, e = statistics.median(bare_rates), statistics.median(engine_rates)
        g = statistics.median(guarded_rates)
        m = statistics.median(metered_rates)
        print(
            f"probes per round: {args.probes}, concurrency {args.concurrency}, rounds {args.rounds}"
        )
        print(f"bare aiohttp GET      median {b:8.0f} req/s   {[round(x) for x in bare_rates]}")
        print(f"apiwatch ProbeEngine  median {e:8.0f} probes/s {[round(x) for x in engine_rates]}")
        print(f"engine + guard        median {g:8.0f} probes/s {[round(x) for x in guarded_rates]}")
        print(f"guard + metrics       median {m:8.0f} probes/s {[round(x) for x in metered_rates]}")
        print(f"engine / bare ratio   {e / b:.2f}   guarded / bare {g / b:.2f}")
        print(f"metrics / guarded     {m / g:.3f}")
        cost = statistics.median(listener_cost_us() for _ in range(3))
        print(f"metrics listener      median {cost:.2f} µs per result")
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
