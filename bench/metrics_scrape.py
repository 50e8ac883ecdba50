"""Scrape cost: the time to render apiwatch's /metrics at about 10,000 series, against a
plain prometheus-client registry of gauges with the same number of series (what any
exporter pays), in the same run; and the size of the exposition.

Run: .venv/bin/python bench/metrics_scrape.py [--pairs 600] [--rounds 20]

The series come from apiwatch's own listeners fed with results of `pairs` (provider,
endpoint) pairs and inbound usage of 40 routes, as a large catalogue would produce.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from apiwatch.domain import Outcome, ProbeResult
from apiwatch.inbound import UsageRecord
from apiwatch.runtime.metrics import Metrics, render


def seeded(pairs: int) -> Metrics:
    metrics = Metrics()
    now = datetime.now(UTC)
    for n in range(pairs):
        provider, endpoint = f"provider{n // 12}", f"endpoint{n % 12}"
        for outcome in (Outcome.OK, Outcome.SERVER_ERROR):
            metrics.observe(ProbeResult(provider, endpoint, outcome, now, latency_ms=40.0))
    for r in range(40):
        for status in (200, 401):
            metrics.observe_usage(
                UsageRecord(1, "k", f"/api/route{r}", "GET", status, 2.0, now, None, True)
            )
    return metrics


def series(text: bytes) -> int:
    return sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))


def timed(render, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        render()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


async def loop_stall_ms(work) -> float:
    """The longest the event loop went without running a 1 ms ticker while `work()` ran."""
    gaps: list[float] = []
    done = False

    async def ticker() -> None:
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.02)
    await work()
    done = True
    await task
    return max(gaps) * 1000


def main(args: argparse.Namespace) -> None:
    metrics = seeded(args.pairs)
    ours = generate_latest(metrics.registry)
    count = series(ours)
    plain = CollectorRegistry()
    gauge = Gauge("plain_series", "A gauge per series", ["a", "b"], registry=plain)
    for n in range(count):
        gauge.labels(f"a{n // 100}", f"b{n % 100}").set(n)
    text_ms = timed(lambda: generate_latest(metrics.registry), args.rounds)
    om_ms = timed(lambda: generate_openmetrics(metrics.registry), args.rounds)
    plain_ms = timed(lambda: generate_latest(plain), args.rounds)
    print(f"series: {count} (apiwatch) / {series(generate_latest(plain))} (plain gauges)")
    print(f"exposition size: {len(ours) / 1024:.0f} KiB")
    print(f"apiwatch text format   median {text_ms:7.1f} ms  ({args.rounds} renders)")
    print(f"apiwatch OpenMetrics   median {om_ms:7.1f} ms")
    print(f"plain gauges, text     median {plain_ms:7.1f} ms")
    print(f"apiwatch / plain ratio {text_ms / plain_ms:.2f}")

    async def in_loop() -> None:
        generate_latest(metrics.registry)

    async def as_served() -> None:
        await render(metrics, "")

    stalls_loop = [asyncio.run(loop_stall_ms(in_loop)) for _ in range(5)]
    stalls_served = [asyncio.run(loop_stall_ms(as_served)) for _ in range(5)]
    print(
        f"event-loop stall during a scrape: median {statistics.median(stalls_served):.1f} ms "
        f"as /metrics renders (thread), {statistics.median(stalls_loop):.1f} ms rendered inline"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=20)
    main(parser.parse_args())
