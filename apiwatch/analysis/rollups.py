"""Latency histograms and the counting rules of hourly roll-ups. Pure.

A roll-up keeps, per series and hour, a count of latencies in fixed buckets instead of the
latencies themselves, so hours merge into days by adding lists and a percentile of any span
comes from the merged list. `LADDER` is the one bucket scheme; `latency_hist` in
`hourly_rollups` means nothing without it, so changing `LATENCY_BOUNDS_MS` needs a
re-roll-up of the stored hours.

Buckets. Bucket `i` holds latencies in (`bounds[i-1]`, `bounds[i]`] ms (bucket 0 holds
[0, `bounds[0]`]); one last overflow bucket holds everything above 60 s. A list therefore
has `len(LATENCY_BOUNDS_MS) + 1` entries. Latencies that are unknown (a probe without a
latency) are counted as requests but are in no bucket.

Percentile error bound. `percentile` finds the bucket holding the nearest-rank percentile
exactly and interpolates linearly inside it, so the estimate and the true value lie in the
same bucket: the error is below the bucket's width. That is at most 5 ms up to 15 ms and at
most 25 % of the bucket's upper bound above 15 ms (e.g. a true p95 of 180 ms is reported
between 150 and 200 ms). In the overflow bucket the answer is 60,000 ms, a lower bound.

Counting rules, the same in SQL (storage) and here:
- probe roll-ups (`kind='probe'`, subject = provider): a request is every attempt that was
  sent, retries included, because each one is a request the provider answered (or not);
  `skipped` attempts were never sent and are left out. An attempt is an error unless its
  outcome is `ok` or `slow` (rate limiting counts as an error: the request failed). This is
  a per-request view; uptime (`attempts.uptime`) counts checks, i.e. final attempts only.
  Probe roll-ups also keep `outcomes`, the hour's checks (final attempts, skipped left out)
  per outcome, for the outcome chart; NULL on roll-ups made before revision 0005.
- API roll-ups (`kind='api'`, subject = key id or "-", detail = route template): every
  request counts, unauthorized ones too; an error is a response with status 400 or above.
"""

from __future__ import annotations

import bisect
import math
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from apiwatch.domain import Outcome

# A 1-2-3-5-ish ladder, finer than powers of two where it matters: consecutive bounds differ
# by at most a third above 15 ms, so a percentile is off by at most 25 % of the reported
# bucket. 43 bounds + overflow = 44 counts per row (~150 bytes of JSON).
LATENCY_BOUNDS_MS: tuple[float, ...] = (
    1, 2, 3, 5, 7, 10, 15, 20, 25, 30, 40, 50, 60, 75, 100, 125, 150, 200, 250, 300, 400,
    500, 600, 750, 1_000, 1_250, 1_500, 2_000, 2_500, 3_000, 4_000, 5_000, 6_000, 7_500,
    10_000, 12_500, 15_000, 20_000, 25_000, 30_000, 40_000, 50_000, 60_000,
)  # fmt: skip

PROBE_SUCCESS_OUTCOMES: tuple[str, ...] = (Outcome.OK.value, Outcome.SLOW.value)
PROBE_NOT_SENT_OUTCOMES: tuple[str, ...] = (Outcome.SKIPPED.value,)
API_ERROR_STATUS = 400


def is_probe_request(outcome: str) -> bool:
    return outcome not in PROBE_NOT_SENT_OUTCOMES


def is_probe_error(outcome: str) -> bool:
    return outcome not in PROBE_SUCCESS_OUTCOMES


def is_api_error(status: int) -> bool:
    return status >= API_ERROR_STATUS


@dataclass(frozen=True, slots=True)
class LatencyLadder:
    """A fixed bucket scheme: what storage needs to build and read `latency_hist`."""

    bounds_ms: tuple[float, ...]

    def __post_init__(self) -> None:
        pairs = zip(self.bounds_ms, self.bounds_ms[1:], strict=False)
        if not self.bounds_ms or any(b <= a for a, b in pairs):
            raise ValueError("bounds must be a non-empty, strictly increasing sequence")
        if self.bounds_ms[0] <= 0:
            raise ValueError("the first bound must be above 0 ms")

    @property
    def size(self) -> int:
        """Entries in a histogram list: one per bound plus the overflow bucket."""
        return len(self.bounds_ms) + 1

    def bucket_index(self, ms: float) -> int:
        """The bucket of a latency; negative latencies (clock steps) count as 0 ms."""
        return bisect.bisect_left(self.bounds_ms, max(0.0, ms))

    def empty(self) -> list[int]:
        return [0] * self.size

    def histogram(self, latencies_ms: Iterable[float | None]) -> list[int]:
        """Count latencies into buckets; None (unknown latency) is left out."""
        hist = self.empty()
        for ms in latencies_ms:
            if ms is not None:
                hist[self.bucket_index(ms)] += 1
        return hist

    def merge(self, hists: Iterable[Sequence[int]]) -> list[int]:
        """Element-wise sum. A shorter list (older, smaller scheme) adds to its prefix."""
        total = self.empty()
        for hist in hists:
            if len(hist) == self.size:
                # map() adds in C: a 30-day chart merges thousands of hours per request.
                total = list(map(operator.add, total, hist))
                continue
            if len(hist) > self.size:
                raise ValueError(f"histogram has {len(hist)} buckets, the scheme {self.size}")
            for i, n in enumerate(hist):
                total[i] += n
        return total

    def bucket_range(self, index: int) -> tuple[float, float]:
        """(lower, upper) ms of a bucket; the overflow bucket's upper is infinity."""
        lower = 0.0 if index == 0 else float(self.bounds_ms[index - 1])
        upper = math.inf if index >= len(self.bounds_ms) else float(self.bounds_ms[index])
        return lower, upper

    def percentile(self, hist: Sequence[int], q: float) -> float | None:
        """The `q`-quantile (0 < q ≤ 1) of the counted latencies; None when nothing counted.

        Nearest rank (the ceil(q·n)-th smallest value), interpolated linearly inside its
        bucket; see the module docstring for the error bound.
        """
        if not 0 < q <= 1:
            raise ValueError(f"q must be in (0, 1], got {q}")
        n = sum(hist)
        if n == 0:
            return None
        rank = max(1, math.ceil(q * n - 1e-9))
        seen = 0
        for index, count in enumerate(hist):
            if count and seen + count >= rank:
                lower, upper = self.bucket_range(index)
                if math.isinf(upper):
                    return lower
                return lower + (upper - lower) * (rank - seen) / count
            seen += count
        raise AssertionError("unreachable: rank ≤ n")

    def summarize(
        self, *, count: int, errors: int, latency_ms_sum: float, hist: Sequence[int]
    ) -> dict[str, Any]:
        """The figures a chart point shows for one series over one span."""
        timed = sum(hist)
        return {
            "requests": count,
            "errors": errors,
            "success_rate": None if count == 0 else round((count - errors) / count, 6),
            "avg_ms": None if timed == 0 else round(latency_ms_sum / timed, 3),
            "p50_ms": _rounded(self.percentile(hist, 0.50)),
            "p95_ms": _rounded(self.percentile(hist, 0.95)),
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


LADDER = LatencyLadder(LATENCY_BOUNDS_MS)


def bucket_index(ms: float) -> int:
    """The `LADDER` bucket of a latency in ms."""
    return LADDER.bucket_index(ms)


def merge(hists: Iterable[Sequence[int]]) -> list[int]:
    """Add `LADDER` histograms (hours into a day, a day's series into one)."""
    return LADDER.merge(hists)


def percentile(hist: Sequence[int], q: float) -> float | None:
    """The `q`-quantile of a `LADDER` histogram, within one bucket's width of the truth."""
    return LADDER.percentile(hist, q)
