"""Scrape cost at many providers: apiwatch's `/metrics` as served, against prometheus_client
rendering the same families (its Counter and Histogram children, a GaugeMetricFamily for the
per-provider status), in the same run: time per scrape, the Python memory a scrape takes at
its peak (tracemalloc), and how long the event loop goes without running while one is served.

Run: .venv/bin/python bench/metrics_scrape.py [--providers 10000] [--rounds 5]

The series come from apiwatch's own listeners fed one result per provider (a latency, an
outcome) and inbound usage of 40 routes; the status family has one series per provider and
status word, as the runtime exports it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from apiwatch.domain import Outcome, ProbeResult
from apiwatch.inbound import UsageRecord
from apiwatch.runtime.metrics import PROBE_BUCKETS, Metrics, render
from apiwatch.runtime.metrics_probes import DURATION_HELP, PROBES_HELP
from apiwatch.runtime.metrics_text import TextFamily

STATUSES = ("online", "degraded", "offline", "unknown")
STATUS_HELP = "1 for the provider's current status (online, degraded, offline, unknown)."
OPENMETRICS = "application/openmetrics-text; version=1.0.0"


def latency(n: int) -> float:
    return 0.005 + (n % 97) / 100


def seeded(providers: int) -> Metrics:
    metrics = Metrics()
    now = datetime.now(UTC)
    for n in range(providers):
        outcome = Outcome.OK if n % 10 else Outcome.SERVER_ERROR
        result = ProbeResult(f"gen{n:05d}", "health", outcome, now, latency_ms=latency(n) * 1000)
        metrics.observe(result)
    for r in range(40):
        for status in (200, 401):
            metrics.observe_usage(
                UsageRecord(1, "k", f"/api/route{r}", "GET", status, 2.0, now, None, True)
            )

    def status() -> list[TextFamily]:
        family = TextFamily(
            "apiwatch_provider_status", STATUS_HELP, "gauge", ["provider", "status"]
        )
        for n in range(providers):
            for word in STATUSES:
                family.add((f"gen{n:05d}", word), 1.0 if word == "online" else 0.0)
        return [family]

    metrics.text_sources.append(status)
    return metrics


class LibraryStatus:
    """The status family as a prometheus_client collector builds it at scrape time."""

    def __init__(self, providers: int) -> None:
        self.providers = providers

    def collect(self) -> list[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "apiwatch_provider_status", STATUS_HELP, labels=["provider", "status"]
        )
        for n in range(self.providers):
            for word in STATUSES:
                family.add_metric([f"gen{n:05d}", word], 1.0 if word == "online" else 0.0)
        return [family]


def library(providers: int) -> CollectorRegistry:
    registry = CollectorRegistry()
    probes = Counter(
        "apiwatch_probes", PROBES_HELP, ["provider", "endpoint", "outcome"], registry=registry
    )
    duration = Histogram(
        "apiwatch_probe_duration_seconds",
        DURATION_HELP,
        ["provider", "endpoint"],
        buckets=PROBE_BUCKETS,
        registry=registry,
    )
    for n in range(providers):
        outcome = "ok" if n % 10 else "server_error"
        probes.labels(f"gen{n:05d}", "health", outcome).inc()
        duration.labels(f"gen{n:05d}", "health").observe(latency(n))
    registry.register(LibraryStatus(providers))
    return registry


async def served(metrics: Metrics, accept: str) -> bytes:
    body, _ = await render(metrics, accept)
    return b"".join([piece async for piece in body])


def measure(scrape: Callable[[], bytes], rounds: int) -> tuple[float, float, int]:
    """Median ms per scrape, peak traced MB of one scrape, and the exposition's size."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        text = scrape()
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    scrape()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return statistics.median(times) * 1000, peak / 1e6, len(text)


async def loop_stall_ms(work: Callable[[], object]) -> float:
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
    await work()  # type: ignore[misc]
    done = True
    await task
    return max(gaps) * 1000


def main(args: argparse.Namespace) -> None:
    disable_created_metrics()
    metrics = seeded(args.providers)
    registry = library(args.providers)

    def ours(accept: str) -> Callable[[], bytes]:
        return lambda: asyncio.run(served(metrics, accept))

    # The library's encoders over the same families, and the event families apiwatch keeps
    # in prometheus_client too (inbound requests): what a scrape would be without the writer.
    def theirs(encode: Callable[[CollectorRegistry], bytes]) -> Callable[[], bytes]:
        return lambda: encode(metrics.registry).removesuffix(b"# EOF\n") + encode(registry)

    print(f"{args.providers} providers, {args.rounds} scrapes each, medians")
    rows = [
        ("apiwatch as served, text", ours("")),
        ("prometheus_client, text", theirs(generate_latest)),
        ("apiwatch as served, OpenMetrics", ours(OPENMETRICS)),
        ("prometheus_client, OpenMetrics", theirs(generate_openmetrics)),
    ]
    figures = {}
    for name, scrape in rows:
        ms, peak, size = measure(scrape, args.rounds)
        figures[name] = ms
        print(f"  {name:34s} {ms:7.0f} ms  peak {peak:6.1f} MB traced  {size / 1e6:5.1f} MB")
    for fmt in ("text", "OpenMetrics"):
        ratio = figures[f"apiwatch as served, {fmt}"] / figures[f"prometheus_client, {fmt}"]
        print(f"  time apiwatch / prometheus_client, {fmt}: {ratio:.2f}")

    async def as_served() -> None:
        await served(metrics, "")

    # Before the per-provider families were written straight to text, the state families
    # (here: the status) were rendered by the client library on the event loop.
    status = CollectorRegistry()
    status.register(LibraryStatus(args.providers))

    async def before() -> None:
        generate_latest(status)

    stalls = [asyncio.run(loop_stall_ms(as_served)) for _ in range(3)]
    earlier = [asyncio.run(loop_stall_ms(before)) for _ in range(3)]
    print(
        f"  longest event-loop stall during a scrape: {statistics.median(stalls):.0f} ms as "
        f"served, {statistics.median(earlier):.0f} ms for the status family rendered on the "
        "loop by the client library, as before"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--providers", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=5)
    main(parser.parse_args())
