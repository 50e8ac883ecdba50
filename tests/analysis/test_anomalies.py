"""Latency z-scores per endpoint, provider anomaly scores, and request-rate baselines."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from apiwatch.analysis.anomalies import (
    AnomalyDetector,
    LatencyWindow,
    RateBaseline,
    SlidingCount,
    mean_stddev,
    z_score,
)

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _steady(seed: int = 7, n: int = 50) -> list[float]:
    rng = random.Random(seed)
    return [100.0 + rng.uniform(-5, 5) for _ in range(n)]


def test_mean_and_population_stddev_of_known_values() -> None:
    mean, stddev = mean_stddev([2, 4, 4, 4, 5, 5, 7, 9])
    assert mean == pytest.approx(5.0)
    assert stddev == pytest.approx(2.0)


def test_z_score_is_signed_distance_in_standard_deviations() -> None:
    assert z_score(130, mean=100, stddev=10, min_stddev_ratio=0) == pytest.approx(3.0)
    assert z_score(80, mean=100, stddev=10, min_stddev_ratio=0) == pytest.approx(-2.0)


def test_z_score_floors_a_near_zero_stddev_so_jitter_is_not_anomalous() -> None:
    # Perfectly steady at 100 ms: 2 ms more is within the 5 % floor (5 ms).
    assert abs(z_score(102, mean=100, stddev=0.0)) < 1


def test_a_millisecond_endpoint_moving_by_milliseconds_is_not_an_anomaly() -> None:
    # A local upstream at ~1 ms with a busy prober: 15 ms once is 14 ms off the mean, under
    # the 10 ms floor times 2.5; 60 ms is well beyond it.
    rng = random.Random(11)
    window = LatencyWindow()
    for _ in range(50):
        window.add(1.0 + rng.uniform(-0.3, 0.3))
    assert window.is_anomaly(15.0) is False
    assert window.is_anomaly(60.0) is True
    loose = LatencyWindow(min_stddev=1.0)  # the floor is the rule's setting
    for latency in window.values:
        loose.add(latency)
    assert loose.is_anomaly(15.0) is True


def test_sudden_latency_jump_after_50_steady_results_is_an_anomaly() -> None:
    window = LatencyWindow()
    for latency in _steady():
        judged = window.observe(latency)
        assert not judged.anomalous
    jump = window.observe(400.0)
    assert jump.anomalous
    assert jump.z is not None and jump.z > 2.5
    assert jump.samples == 50


def test_ordinary_latency_after_steady_results_is_not_an_anomaly() -> None:
    window = LatencyWindow()
    for latency in _steady():
        window.add(latency)
    assert window.is_anomaly(103.0) is False
    assert window.is_anomaly(400.0) is True


def test_nothing_is_judged_before_the_minimum_sample_size() -> None:
    window = LatencyWindow(min_samples=20)
    for latency in _steady(n=19):
        window.add(latency)
    assert window.z_score(10_000.0) is None
    assert window.is_anomaly(10_000.0) is False
    window.add(100.0)
    assert window.is_anomaly(10_000.0) is True


def test_window_keeps_only_the_last_50_results() -> None:
    window = LatencyWindow(size=50)
    for latency in [1000.0] * 50 + [100.0] * 50:
        window.add(latency)
    mean, _ = window.stats()
    assert mean == pytest.approx(100.0)


def test_the_window_is_a_ring_read_oldest_first() -> None:
    window = LatencyWindow(size=3)
    for latency in [1.0, 2.0, 3.0, 4.0, 5.0]:
        window.add(latency)
    assert window.values == [3.0, 4.0, 5.0] and len(window) == 3
    assert window.stats()[0] == pytest.approx(4.0)


@pytest.mark.parametrize("size", [1, 5, 50])
def test_the_running_stats_match_the_window_summed_afresh(size: int) -> None:
    """The window keeps its sums as it goes: after thousands of latencies of every kind
    (sub-millisecond, a tiny spread around a large mean, long tails) they still give what
    summing the window afresh gives."""
    rng = random.Random(size)
    window = LatencyWindow(size=size)
    kinds = [
        lambda: rng.uniform(0.2, 2.0),
        lambda: 5000.0 + rng.uniform(0, 0.001),
        lambda: rng.expovariate(0.001),
    ]
    for i in range(3000):
        window.add(rng.choice(kinds)() if i % 500 < 400 else kinds[1]())
        mean, stddev = window.stats()
        exact_mean, exact_stddev = mean_stddev(window.values)
        assert mean == pytest.approx(exact_mean, rel=1e-9, abs=1e-9)
        assert stddev == pytest.approx(exact_stddev, rel=1e-6, abs=1e-6)
    assert LatencyWindow().stats() == (0.0, 0.0)


@pytest.mark.parametrize("size", [1, 5, 50])
@pytest.mark.parametrize("odd", [float("nan"), float("inf")])
def test_a_nan_or_infinite_latency_spoils_the_stats_only_while_in_the_window(
    size: int, odd: float
) -> None:
    window = LatencyWindow(size=size)
    for latency in [10.0, 12.0, 11.0] * 20:
        window.add(latency)
    window.add(odd)
    assert not all(map(math.isfinite, window.stats()))
    for i in range(size):
        window.add(20.0 + i % 3)
    mean, stddev = window.stats()
    exact_mean, exact_stddev = mean_stddev(window.values)
    assert mean == pytest.approx(exact_mean) and stddev == pytest.approx(exact_stddev)


def test_a_window_of_one_repeated_latency_is_not_summed_afresh_each_time() -> None:
    window = LatencyWindow(size=50)
    for _ in range(230):
        window.add(120.0)
        assert window.stats() == (120.0, 0.0)
    # Summed afresh only when due (every 50 replacements), not by each `stats()`.
    assert window._since_exact == (230 - 50) % 50


def test_new_floors_reach_the_windows_already_kept() -> None:
    detector = AnomalyDetector(min_stddev=10.0)
    for _ in range(30):
        detector.observe("p", "health", 1.0)
    assert detector.window("p", "health").is_anomaly(15.0) is False
    detector.set_floors(min_stddev=1.0, min_stddev_ratio=0.05)
    assert detector.window("p", "health").is_anomaly(15.0) is True
    assert detector.window("q", "health").min_stddev == 1.0  # and the windows to come


def test_slower_only_ignores_faster_outliers() -> None:
    window = LatencyWindow()
    for latency in _steady():
        window.add(latency)
    assert window.is_anomaly(10.0) is True
    assert window.is_anomaly(10.0, slower_only=True) is False


def test_provider_score_is_the_largest_endpoint_z_and_drops_when_calm() -> None:
    detector = AnomalyDetector()
    for latency in _steady():
        detector.observe("coingecko", "ping", latency)
        detector.observe("coingecko", "prices", latency)
        detector.observe("kraken", "ticker", latency)
    assert detector.provider_score("coingecko") < 2.5
    detector.observe("coingecko", "prices", 500.0)
    scores = detector.scores()
    assert scores["coingecko"] > 2.5
    assert scores["kraken"] < 2.5
    detector.observe("coingecko", "prices", 100.0)
    assert detector.provider_score("coingecko") < 2.5


def test_rate_baseline_is_the_median_minute_and_a_burst_doubles_it() -> None:
    baseline = RateBaseline(baseline_minutes=60, min_history_minutes=10)
    for minute in range(30):
        baseline.add(T0 + timedelta(minutes=minute), count=10)
    now = T0 + timedelta(minutes=30, seconds=20)
    steady = baseline.judge(now)
    assert steady.normal == pytest.approx(10)
    assert steady.ratio == pytest.approx(1.0)
    baseline.add(now, count=35)
    burst = baseline.judge(now)
    assert burst.current == 35
    assert burst.ratio == pytest.approx(3.5)


def test_rate_baseline_needs_history_before_judging() -> None:
    baseline = RateBaseline(min_history_minutes=10)
    baseline.add(T0, count=500)
    assert baseline.judge(T0 + timedelta(minutes=3)).ratio is None


def test_rate_baseline_forgets_minutes_older_than_its_horizon() -> None:
    baseline = RateBaseline(baseline_minutes=60)
    baseline.add(T0, count=5)
    baseline.judge(T0 + timedelta(hours=3))
    assert baseline.empty


def test_sliding_count_drops_events_older_than_the_window() -> None:
    counter = SlidingCount(window_s=3600)
    for minutes in (0, 10, 20, 30):
        counter.add(T0 + timedelta(minutes=minutes))
    counter.add(T0 + timedelta(minutes=5))  # out of order
    assert counter.count(T0 + timedelta(minutes=40)) == 5
    assert counter.count(T0 + timedelta(minutes=65)) == 3
    assert counter.count(T0 + timedelta(hours=3)) == 0
