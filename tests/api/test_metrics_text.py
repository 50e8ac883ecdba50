"""Families written straight to exposition text give, byte for byte, what prometheus_client's
encoders give for the same families, in both formats: label values that need escaping, values
from zero to infinity, label names in any order, and families with no series."""

from __future__ import annotations

import math

import pytest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from apiwatch.runtime.metrics_text import TextFamily, number, render

VALUES = [0.0, 1.0, 0.5, 2.5e-7, 123456.7, 999999.9, 1e6, 3.2e12, -4.0, -1e301, math.inf, -math.inf]
LABELS = ["plain", 'a "quoted" one', "back\\slash", "two\nlines", "ünïcode", ""]


class _Collector:
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> list[Metric]:
        return self._families


def _pairs() -> list[tuple[TextFamily, Metric]]:
    gauge = TextFamily("t_gauge", 'A gauge: "doc" with \\ and\nnewline', "gauge", ["zz", "aa"])
    library_gauge = GaugeMetricFamily(gauge.name, gauge.doc, labels=["zz", "aa"])
    counter = TextFamily("t_things", "Things counted.", "counter", ["provider"])
    library_counter = CounterMetricFamily(counter.name, counter.doc, labels=["provider"])
    for i, value in enumerate(VALUES):
        labels = [LABELS[i % len(LABELS)], LABELS[(i * 5 + 1) % len(LABELS)]]
        gauge.add(labels, value)
        library_gauge.add_metric(labels, value)
        counter.add(labels[:1], abs(value))
        library_counter.add_metric(labels[:1], abs(value))
    empty = TextFamily("t_empty", "No series yet.", "gauge", ["provider"])
    library_empty = GaugeMetricFamily(empty.name, empty.doc, labels=["provider"])
    return [(gauge, library_gauge), (counter, library_counter), (empty, library_empty)]


@pytest.mark.parametrize("openmetrics", [False, True])
def test_gauges_and_counters_are_written_as_the_library_writes_them(openmetrics: bool) -> None:
    pairs = _pairs()
    ours = render([text for text, _ in pairs], openmetrics=openmetrics)
    encode = generate_openmetrics if openmetrics else generate_latest
    expected = encode(_Collector([library for _, library in pairs])).removesuffix(b"# EOF\n")
    assert ours == expected
    assert b'\\"quoted\\"' in ours and b"two\\nlines" in ours  # escaped, not dropped


def test_numbers_are_formatted_as_go_formats_them() -> None:
    from prometheus_client.utils import floatToGoString

    for value in [*VALUES, math.nan, 7, 1e-320, 5e15, 1e16]:
        assert number(value) == floatToGoString(value)


def test_many_series_are_joined_in_pieces_without_losing_one() -> None:
    family = TextFamily("t_many", "Many.", "gauge", ["provider"])
    for i in range(10_000):
        family.add([f"p{i:05d}"], float(i))
    lines = render([family], openmetrics=False).decode().splitlines()
    assert len(lines) == 10_002
    assert lines[2] == 't_many{provider="p00000"} 0.0'
    assert lines[-1] == 't_many{provider="p09999"} 9999.0'


@pytest.mark.parametrize("openmetrics", [False, True])
def test_a_histogram_without_labels_is_written_as_the_library_writes_it(openmetrics: bool) -> None:
    from prometheus_client.core import HistogramMetricFamily

    ours = TextFamily("t_wait", "Waits.", "histogram", [], le=["0.1", "1.0", "+Inf"])
    ours.add_histogram([], [1.0, 3.0, 4.0], 2.5)
    library = HistogramMetricFamily("t_wait", "Waits.", labels=[])
    library.add_metric([], [("0.1", 1.0), ("1.0", 3.0), ("+Inf", 4.0)], sum_value=2.5)
    encode = generate_openmetrics if openmetrics else generate_latest
    expected = encode(_Collector([library])).removesuffix(b"# EOF\n")
    assert render([ours], openmetrics=openmetrics) == expected


@pytest.mark.parametrize("escaping", ["dots", "values", "allow-utf-8", "underscores"])
async def test_every_family_of_a_scrape_uses_the_one_naming_it_declares(escaping: str) -> None:
    """A scraper may ask for a name-escaping scheme; apiwatch's names are plain, and its
    answer names one scheme (underscores) that every family, written by the client library
    or straight to text, follows."""
    from datetime import UTC, datetime

    from apiwatch.domain import Outcome, ProbeResult
    from apiwatch.runtime.metrics import Metrics
    from apiwatch.runtime.metrics import render as scrape

    metrics = Metrics()
    metrics.observe(
        ProbeResult("coingecko", "health", Outcome.OK, datetime.now(UTC), latency_ms=12.0)
    )
    accept = f"application/openmetrics-text; version=1.0.0; escaping={escaping}"
    body, content_type = await scrape(metrics, accept)
    text = b"".join([piece async for piece in body]).decode()
    assert content_type.endswith("escaping=underscores")
    assert 'apiwatch_probes_total{endpoint="health",outcome="ok",provider="coingecko"} 1.0' in text
    assert "\nprocess_cpu_seconds_total " in text
    assert "__" not in text and "U_" not in text
    assert text.endswith("# EOF\n") and text.count("# EOF") == 1
