"""Anomalies in numbers over time: latency z-scores per endpoint and request-rate spikes. Pure.

Latency: each endpoint keeps its last `size` (50) latencies; a new latency is judged against
them (mean and standard deviation) before it joins them, so a sudden jump stands out and a
lasting change slowly becomes the new normal. Nothing is judged before `min_samples` (20).

Request rates: per-minute counts per subject (an API key) and the median minute of the
trailing hour as its normal rate, so one busy minute does not move the baseline.

No clocks here: callers pass the time of every observation.
"""

from __future__ import annotations

import bisect
import math
import statistics
from array import array
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

WINDOW = 50
MIN_SAMPLES = 20
Z_THRESHOLD = 2.5
# A perfectly steady endpoint has a standard deviation near 0, which would make 1 ms of
# jitter "infinitely" anomalous; the floors keep small wobbles ordinary. 10 ms: an upstream
# answering in a millisecond or two moves by several under any load on the prober's own
# host, and a move of less than 25 ms (2.5 floors) is nothing a user of an API would notice.
MIN_STDDEV_MS = 10.0
MIN_STDDEV_RATIO = 0.05


def mean_stddev(values: Iterable[float]) -> tuple[float, float]:
    """Mean and population standard deviation (0.0, 0.0 for no values)."""
    data = list(values)
    if not data:
        return 0.0, 0.0
    mean = math.fsum(data) / len(data)
    variance = math.fsum((v - mean) ** 2 for v in data) / len(data)
    return mean, math.sqrt(variance)


def z_score(
    value: float,
    *,
    mean: float,
    stddev: float,
    min_stddev: float = MIN_STDDEV_MS,
    min_stddev_ratio: float = MIN_STDDEV_RATIO,
) -> float:
    """How many (floored) standard deviations `value` lies from `mean`; signed."""
    spread = max(stddev, min_stddev, abs(mean) * min_stddev_ratio)
    if spread <= 0:
        return 0.0
    return (value - mean) / spread


@dataclass(frozen=True, slots=True)
class Judgement:
    """What one latency came to: `z` is None while the window is too small to judge."""

    z: float | None
    anomalous: bool
    mean: float
    stddev: float
    samples: int


class LatencyWindow:
    """The last `size` latencies of one endpoint.

    Kept as a ring in an `array('d')` (8 bytes a latency) rather than a deque of float
    objects (32): a monitor holds one window per endpoint, ten thousand and more. The sum
    and the sum of squares ride along, so judging a latency costs the same for a window of
    50 as of 5 (it runs for every successful probe). They are kept as offsets from the
    window's first latency, which keeps the squares small (no cancellation when the spread
    is tiny against the mean), and summed afresh once per `size` latencies, so rounding
    cannot build up.
    """

    __slots__ = (
        "_ring",
        "_scale",
        "_shift",
        "_since_exact",
        "_start",
        "_sum",
        "_sumsq",
        "min_samples",
        "min_stddev",
        "min_stddev_ratio",
        "size",
    )

    def __init__(
        self,
        *,
        size: int = WINDOW,
        min_samples: int = MIN_SAMPLES,
        min_stddev: float = MIN_STDDEV_MS,
        min_stddev_ratio: float = MIN_STDDEV_RATIO,
    ) -> None:
        self.size = size
        self._ring = array("d")
        self._start = 0  # where the oldest latency is, once the ring is full
        self._shift = 0.0
        self._sum = 0.0  # of (latency - shift) over the ring
        self._sumsq = 0.0  # of (latency - shift) ** 2
        self._scale = 0.0  # the largest square added since then: what rounding is relative to
        self._since_exact = 0  # latencies replaced since the sums were last taken afresh
        self.min_samples = min_samples
        self.min_stddev = min_stddev
        self.min_stddev_ratio = min_stddev_ratio

    def add(self, latency: float) -> None:
        ring = self._ring
        if not ring:
            self._shift = latency
        d = latency - self._shift
        if d * d > self._scale:
            self._scale = d * d
        if len(ring) < self.size:
            ring.append(latency)
            self._sum += d
            self._sumsq += d * d
            return
        old = ring[self._start] - self._shift
        ring[self._start] = latency
        self._start = (self._start + 1) % self.size
        self._since_exact += 1
        if self._since_exact >= self.size or not (math.isfinite(d) and math.isfinite(old)):
            # Due, or a NaN or infinity arriving or leaving: subtracting it back out would
            # leave the sums NaN after it has gone.
            self._exact()
        else:
            self._sum += d - old
            self._sumsq += d * d - old * old

    def _exact(self) -> None:
        ring = self._ring
        shift = self._shift = next((v for v in ring if math.isfinite(v)), 0.0)
        self._sum = math.fsum(v - shift for v in ring)
        squares = [(v - shift) ** 2 for v in ring]
        self._sumsq = math.fsum(squares)
        self._scale = max(squares, default=0.0)
        self._since_exact = 0

    @property
    def values(self) -> list[float]:
        """The latencies in the window, oldest first."""
        ring, start = self._ring, self._start
        return [*ring[start:], *ring[:start]]

    def __len__(self) -> int:
        return len(self._ring)

    @property
    def ready(self) -> bool:
        return len(self._ring) >= self.min_samples

    def stats(self) -> tuple[float, float]:
        """Mean and population standard deviation of the window (0.0, 0.0 when empty)."""
        n = len(self._ring)
        if not n:
            return 0.0, 0.0
        offset = self._sum / n
        variance = self._sumsq / n - offset * offset
        if self._scale > 0.0 and variance * 1e8 <= self._scale:
            # The spread is tiny against squares the sums have carried: rounding left by
            # them (latencies long gone included) could be much of it. Sum afresh.
            self._exact()
            offset = self._sum / n
            variance = self._sumsq / n - offset * offset
        if variance > 0:
            return self._shift + offset, math.sqrt(variance)
        return self._shift + offset, variance if math.isnan(variance) else 0.0

    def z_score(self, latency: float) -> float | None:
        """z of `latency` against the window, or None before `min_samples`."""
        if not self.ready:
            return None
        mean, stddev = self.stats()
        return z_score(
            latency,
            mean=mean,
            stddev=stddev,
            min_stddev=self.min_stddev,
            min_stddev_ratio=self.min_stddev_ratio,
        )

    def is_anomaly(
        self, latency: float, threshold: float = Z_THRESHOLD, *, slower_only: bool = False
    ) -> bool:
        z = self.z_score(latency)
        return z is not None and _beyond(z, threshold, slower_only=slower_only)

    def observe(
        self, latency: float, threshold: float = Z_THRESHOLD, *, slower_only: bool = False
    ) -> Judgement:
        """Judge `latency` against the window, then add it."""
        mean, stddev = self.stats()  # once: this runs for every successful probe
        samples = len(self._ring)
        z = None
        if samples >= self.min_samples:
            z = z_score(
                latency,
                mean=mean,
                stddev=stddev,
                min_stddev=self.min_stddev,
                min_stddev_ratio=self.min_stddev_ratio,
            )
        anomalous = z is not None and _beyond(z, threshold, slower_only=slower_only)
        self.add(latency)
        return Judgement(z, anomalous, mean, stddev, samples)


def _beyond(z: float, threshold: float, *, slower_only: bool) -> bool:
    return z > threshold if slower_only else abs(z) > threshold


class AnomalyDetector:
    """Latency windows for every (provider, endpoint) and a score per provider.

    A provider's score is the largest |z| among its endpoints' newest judged latencies:
    0 when all is usual, above the threshold while one endpoint is anomalous.
    """

    def __init__(
        self,
        *,
        size: int = WINDOW,
        min_samples: int = MIN_SAMPLES,
        threshold: float = Z_THRESHOLD,
        slower_only: bool = False,
        min_stddev: float = MIN_STDDEV_MS,
        min_stddev_ratio: float = MIN_STDDEV_RATIO,
    ) -> None:
        self.size = size
        self.min_samples = min_samples
        self.threshold = threshold
        self.slower_only = slower_only
        self.min_stddev = min_stddev
        self.min_stddev_ratio = min_stddev_ratio
        self._windows: dict[tuple[str, str], LatencyWindow] = {}
        self._last_z: dict[tuple[str, str], float] = {}

    def window(self, provider: str, endpoint: str) -> LatencyWindow:
        key = (provider, endpoint)
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = LatencyWindow(
                size=self.size,
                min_samples=self.min_samples,
                min_stddev=self.min_stddev,
                min_stddev_ratio=self.min_stddev_ratio,
            )
        return window

    def set_floors(self, *, min_stddev: float, min_stddev_ratio: float) -> None:
        """New deviation floors, for the windows there are as well as those to come."""
        self.min_stddev, self.min_stddev_ratio = min_stddev, min_stddev_ratio
        for window in self._windows.values():
            window.min_stddev, window.min_stddev_ratio = min_stddev, min_stddev_ratio

    def observe(self, provider: str, endpoint: str, latency: float) -> Judgement:
        judgement = self.window(provider, endpoint).observe(
            latency, self.threshold, slower_only=self.slower_only
        )
        if judgement.z is not None:
            self._last_z[(provider, endpoint)] = judgement.z
        return judgement

    def forget(self, provider: str) -> None:
        """Drop the provider's windows and scores (it left the catalogue or was disabled)."""
        for key in [key for key in self._windows if key[0] == provider]:
            del self._windows[key]
        for key in [key for key in self._last_z if key[0] == provider]:
            del self._last_z[key]

    def provider_score(self, provider: str) -> float:
        scores = [abs(z) for (pid, _), z in self._last_z.items() if pid == provider]
        return max(scores, default=0.0)

    def scores(self) -> dict[str, float]:
        """Score of every provider with at least one endpoint seen."""
        result: dict[str, float] = {}
        for provider, _ in self._windows:
            result.setdefault(provider, 0.0)
        for (provider, _), z in self._last_z.items():
            result[provider] = max(result[provider], abs(z))
        return result


def _minute(at: datetime) -> int:
    return math.floor(at.timestamp() / 60)


@dataclass(frozen=True, slots=True)
class RateJudgement:
    """A subject's current per-minute rate against its normal (median) rate."""

    current: int
    normal: float | None  # None while there is too little history
    ratio: float | None


class RateBaseline:
    """Per-minute request counts of one subject over the trailing `baseline_minutes`.

    The normal rate is the median of the complete minutes before the last one, counting
    quiet minutes as 0 (but not minutes before the subject was first seen); the current rate
    is the larger of the last complete minute and the one in progress, so a burst shows
    within the minute it starts and lasts for one more.
    """

    def __init__(
        self, *, baseline_minutes: int = 60, min_history_minutes: int = 10, floor: float = 1.0
    ) -> None:
        self.baseline_minutes = baseline_minutes
        self.min_history_minutes = min_history_minutes
        self.floor = floor
        self._counts: dict[int, int] = {}
        self._first_minute: int | None = None

    def add(self, at: datetime, count: int = 1) -> None:
        minute = _minute(at)
        self._counts[minute] = self._counts.get(minute, 0) + count
        if self._first_minute is None or minute < self._first_minute:
            self._first_minute = minute

    def judge(self, now: datetime) -> RateJudgement:
        minute = _minute(now)
        self._forget_before(minute - self.baseline_minutes - 1)
        current = max(self._counts.get(minute, 0), self._counts.get(minute - 1, 0))
        if self._first_minute is None:
            return RateJudgement(current, None, None)
        start = max(self._first_minute, minute - 1 - self.baseline_minutes)
        history = [self._counts.get(m, 0) for m in range(start, minute - 1)]
        if len(history) < self.min_history_minutes:
            return RateJudgement(current, None, None)
        normal = max(float(statistics.median(history)), self.floor)
        return RateJudgement(current, normal, current / normal)

    @property
    def empty(self) -> bool:
        return not self._counts

    def _forget_before(self, minute: int) -> None:
        for old in [m for m in self._counts if m < minute]:
            del self._counts[old]


class SlidingCount:
    """Events in the trailing `window_s` seconds (e.g. unauthorized attempts per hour)."""

    def __init__(self, *, window_s: float = 3600.0) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque()

    def add(self, at: datetime) -> None:
        stamp = at.timestamp()
        if self._times and stamp < self._times[-1]:
            # Concurrent requests can arrive slightly out of order; keep the deque sorted.
            self._times.insert(bisect.bisect_right(self._times, stamp), stamp)
        else:
            self._times.append(stamp)

    def count(self, now: datetime) -> int:
        horizon = now.timestamp() - self.window_s
        while self._times and self._times[0] <= horizon:
            self._times.popleft()
        return len(self._times)
