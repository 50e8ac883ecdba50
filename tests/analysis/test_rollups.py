"""Latency histograms of the hourly roll-ups: buckets, merging, percentiles and their error."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from apiwatch.analysis.rollups import (
    LADDER,
    LATENCY_BOUNDS_MS,
    LatencyLadder,
    bucket_index,
    is_api_error,
    is_probe_error,
    is_probe_request,
    merge,
    percentile,
)
from apiwatch.domain import Outcome


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered) - 1e-9)) - 1]


def test_bounds_are_inclusive_upper_edges_and_above_60s_overflows() -> None:
    assert bucket_index(0) == 0
    assert bucket_index(1) == 0
    assert bucket_index(1.0001) == 1
    assert bucket_index(100) == LATENCY_BOUNDS_MS.index(100)
    assert bucket_index(100.5) == LATENCY_BOUNDS_MS.index(125)
    assert bucket_index(60_000) == len(LATENCY_BOUNDS_MS) - 1
    assert bucket_index(60_000.1) == len(LATENCY_BOUNDS_MS) == LADDER.size - 1


def test_negative_latency_from_a_clock_step_counts_as_zero() -> None:
    assert bucket_index(-5) == 0


def test_ladder_spans_0_to_60s_in_about_forty_buckets_at_most_a_third_apart_above_15ms() -> None:
    assert 35 <= len(LATENCY_BOUNDS_MS) <= 50
    assert LATENCY_BOUNDS_MS[-1] == 60_000
    for lower, upper in itertools.pairwise(LATENCY_BOUNDS_MS):
        if lower >= 15:
            assert (upper - lower) / upper <= 0.25, (lower, upper)
        else:
            assert upper - lower <= 5


def test_histogram_leaves_unknown_latencies_out() -> None:
    hist = LADDER.histogram([0.5, 1.5, None, 99, 100, 70_000])
    assert sum(hist) == 5
    assert hist[0] == 1 and hist[1] == 1 and hist[-1] == 1
    assert hist[LATENCY_BOUNDS_MS.index(100)] == 2


def test_merge_adds_hours_elementwise_and_pads_shorter_lists() -> None:
    a = LADDER.histogram([5, 50, 500])
    b = LADDER.histogram([5, 5000])
    merged = merge([a, b, [1, 2]])
    assert merged[bucket_index(5)] == 2 + 0
    assert merged[0] == 1 and merged[1] == 2
    assert sum(merged) == 5 + 3
    assert len(merged) == LADDER.size


def test_merge_refuses_a_histogram_of_a_larger_scheme() -> None:
    with pytest.raises(ValueError, match="buckets"):
        merge([[0] * (LADDER.size + 1)])


def test_percentile_of_nothing_is_none() -> None:
    assert percentile(LADDER.empty(), 0.5) is None


def test_percentile_interpolates_inside_the_bucket_of_the_nearest_rank() -> None:
    # 100 values: 90 in (100, 125], 10 in (750, 1000].
    hist = LADDER.histogram([110] * 90 + [900] * 10)
    # Rank 50 of 90 in (100, 125]: 100 + 25 * 50/90.
    assert percentile(hist, 0.5) == pytest.approx(100 + 25 * 50 / 90)
    # Rank 95 is the 5th of 10 in (750, 1000].
    assert percentile(hist, 0.95) == pytest.approx(750 + 250 * 5 / 10)
    assert percentile(hist, 1.0) == 1000


def test_percentile_in_the_overflow_bucket_reports_60s_as_a_lower_bound() -> None:
    assert percentile(LADDER.histogram([90_000, 120_000]), 0.5) == 60_000


@pytest.mark.parametrize("seed", range(5))
def test_percentile_is_within_the_documented_bucket_error(seed: int) -> None:
    rng = random.Random(seed)
    values = [rng.lognormvariate(5, 1.2) for _ in range(2_000)]
    hist = LADDER.histogram(values)
    for q in (0.5, 0.9, 0.95, 0.99):
        true = nearest_rank(values, q)
        estimate = percentile(hist, q)
        assert estimate is not None
        lower, upper = LADDER.bucket_range(bucket_index(true))
        assert lower <= estimate <= upper, (q, true, estimate)
        # The documented bound: ≤ 5 ms up to 15 ms, ≤ 25 % of the bucket's top above.
        assert abs(estimate - true) <= max(5.0, 0.25 * upper)


def test_percentile_rejects_q_outside_0_to_1() -> None:
    with pytest.raises(ValueError):
        percentile(LADDER.histogram([1]), 0)
    with pytest.raises(ValueError):
        percentile(LADDER.histogram([1]), 1.5)


def test_ladder_refuses_unsorted_bounds() -> None:
    with pytest.raises(ValueError, match="increasing"):
        LatencyLadder((10, 5))


def test_summarize_gives_success_rate_and_mean_of_timed_requests() -> None:
    hist = LADDER.histogram([100, 300])
    summary = LADDER.summarize(count=4, errors=1, latency_ms_sum=400.0, hist=hist)
    assert summary["requests"] == 4
    assert summary["errors"] == 1
    assert summary["success_rate"] == 0.75
    assert summary["avg_ms"] == 200.0
    assert summary["p50_ms"] == 100.0
    assert summary["p95_ms"] == 300.0
    empty = LADDER.summarize(count=0, errors=0, latency_ms_sum=0.0, hist=LADDER.empty())
    assert empty["success_rate"] is None and empty["p50_ms"] is None


def test_only_ok_and_slow_probes_succeed_and_skipped_ones_are_not_requests() -> None:
    assert {o for o in Outcome if not is_probe_error(o.value)} == {Outcome.OK, Outcome.SLOW}
    assert {o for o in Outcome if not is_probe_request(o.value)} == {Outcome.SKIPPED}
    assert is_probe_error(Outcome.RATE_LIMITED.value)


def test_api_responses_from_400_up_are_errors() -> None:
    assert not is_api_error(200) and not is_api_error(399)
    assert is_api_error(401) and is_api_error(429) and is_api_error(503)
