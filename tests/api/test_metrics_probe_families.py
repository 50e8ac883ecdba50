"""The per-probe families kept as plain counts expose exactly what prometheus_client's own
Counter and Histogram expose for the same observations, in both exposition formats."""

from __future__ import annotations

import random

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from apiwatch.runtime.metrics import PROBE_BUCKETS
from apiwatch.runtime.metrics_probes import DURATION_HELP, PROBES_HELP, ProbeFamilies
from apiwatch.runtime.metrics_text import render


def _text(families: ProbeFamilies, *, openmetrics: bool = False) -> bytes:
    return render(families.snapshot().families(), openmetrics=openmetrics)


def _library(observations: list[tuple[str, str, str, float | None]]) -> CollectorRegistry:
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
    for provider, endpoint, outcome, seconds in observations:
        probes.labels(provider, endpoint, outcome).inc()
        child = duration.labels(provider, endpoint)
        if seconds is not None:
            child.observe(seconds)
    return registry


def _ours(observations: list[tuple[str, str, str, float | None]]) -> ProbeFamilies:
    families = ProbeFamilies(PROBE_BUCKETS)
    for provider, endpoint, outcome, seconds in observations:
        families.count(provider, endpoint, outcome)
        families.ensure(provider, endpoint)
        if seconds is not None:
            families.observe(provider, endpoint, seconds)
    return families


@pytest.mark.parametrize("encode", [generate_latest, generate_openmetrics])
def test_the_exposition_is_the_librarys(encode) -> None:
    from prometheus_client import disable_created_metrics

    disable_created_metrics()  # as `Metrics` does: no _created series beside the counts
    rng = random.Random(7)
    observations: list[tuple[str, str, str, float | None]] = []
    for _ in range(3000):
        provider = f"p{rng.randrange(40)}"
        endpoint = rng.choice(["health", "ticker"])
        outcome = rng.choice(["ok", "ok", "ok", "timeout", "http_5xx"])
        # Latencies on and around the bucket bounds, and none for a timeout.
        seconds = None if outcome == "timeout" else rng.choice([*PROBE_BUCKETS, rng.random()])
        observations.append((provider, endpoint, outcome, seconds))
    openmetrics = encode is generate_openmetrics
    expected = encode(_library(observations)).removesuffix(b"# EOF\n")
    assert _text(_ours(observations), openmetrics=openmetrics) == expected


def test_a_snapshot_does_not_move_with_later_probes() -> None:
    families = ProbeFamilies(PROBE_BUCKETS)
    families.count("a", "health", "ok")
    families.observe("a", "health", 0.02)
    before = _text(families)
    snapshot = families.snapshot()
    families.count("a", "health", "ok")
    families.observe("a", "health", 0.02)
    families.count("b", "health", "ok")
    assert render(snapshot.families(), openmetrics=False) == before
    assert b'apiwatch_probes_total{endpoint="health",outcome="ok",provider="a"} 2.0' in (
        _text(families)
    )
