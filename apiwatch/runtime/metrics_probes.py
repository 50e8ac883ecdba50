"""The per-probe families, `apiwatch_probes_total` and `apiwatch_probe_duration_seconds`,
kept as plain counts and exposed at scrape time.

These are the only families with a series per provider and endpoint that change on every
probe. prometheus_client keeps each labelled child as objects of its own (a histogram child
is a dozen values, each with a lock): about 3 KB per provider, 30 MB at 10,000 providers,
and a lock taken per bucket update on the probe path. Here a probe costs a dict lookup, a
bisect and two additions; a scrape copies the counts on the event loop (`snapshot`) and the
copy is written out in a worker thread (`metrics_text`), as the other event-driven families
are rendered. The exposition is the one prometheus_client gives for the same observations (a
test compares them).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from itertools import accumulate

from prometheus_client.utils import floatToGoString

from apiwatch.runtime.metrics_text import TextFamily

PROBES_HELP = "Connection attempts by outcome (retries included)."
DURATION_HELP = "Latency of attempts that got an answer (skipped, timed out and refused excluded)."


class ProbeFamilies:
    """Counts per (provider, endpoint, outcome) and latency buckets per (provider, endpoint).

    `count` and `observe` run on the event loop; `snapshot` too, and what it returns may be
    collected anywhere.
    """

    def __init__(self, buckets: Sequence[float]) -> None:
        self.bounds = tuple(float(b) for b in buckets)
        self._le = [floatToGoString(b) for b in self.bounds] + ["+Inf"]
        self.counts: dict[tuple[str, str, str], float] = {}
        # Per series: a count per bucket (the last one past every bound), then the sum.
        self.latencies: dict[tuple[str, str], list[float]] = {}

    def count(self, provider: str, endpoint: str, outcome: str) -> None:
        key = (provider, endpoint, outcome)
        self.counts[key] = self.counts.get(key, 0.0) + 1.0

    def observe(self, provider: str, endpoint: str, seconds: float) -> None:
        row = self.latencies.get((provider, endpoint)) or self.ensure(provider, endpoint)
        # A value equal to a bound belongs to that bound's bucket (le: less or equal).
        row[bisect.bisect_left(self.bounds, seconds)] += 1
        row[-1] += seconds

    def ensure(self, provider: str, endpoint: str) -> list[float]:
        """The series' row, made (all zeros) if it has none: a series exists from the first
        sent attempt, answered or not, as a labelled child does from its creation."""
        key = (provider, endpoint)
        row = self.latencies.get(key)
        if row is None:
            row = self.latencies[key] = [0.0] * (len(self.bounds) + 2)
        return row

    def snapshot(self) -> ProbeSnapshot:
        return ProbeSnapshot(
            dict(self.counts), {key: row[:] for key, row in self.latencies.items()}, self._le
        )


class ProbeSnapshot:
    """The counts at one instant, as the two families' exposition."""

    def __init__(
        self,
        counts: dict[tuple[str, str, str], float],
        latencies: dict[tuple[str, str], list[float]],
        le: list[str],
    ) -> None:
        self._counts = counts
        self._latencies = latencies
        self._le = le

    def families(self) -> list[TextFamily]:
        probes = TextFamily(
            "apiwatch_probes", PROBES_HELP, "counter", ["provider", "endpoint", "outcome"]
        )
        for labels, value in self._counts.items():
            probes.add(labels, value)
        duration = TextFamily(
            "apiwatch_probe_duration_seconds",
            DURATION_HELP,
            "histogram",
            ["provider", "endpoint"],
            le=self._le,
        )
        for labels, row in self._latencies.items():
            duration.add_histogram(labels, list(accumulate(row[:-1])), row[-1])
        return [probes, duration]
