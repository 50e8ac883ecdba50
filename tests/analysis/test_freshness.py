"""Freshness judgements (pure): TTL boundaries, missing timestamps, clock skew."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from apiwatch.analysis.freshness import (
    DEFAULT_TTL_S,
    FUTURE_TOLERANCE_S,
    Freshness,
    age_s,
    judge,
)
from apiwatch.domain import Category

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
TTL = 300.0


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def test_default_ttls_follow_the_design_and_cover_every_category() -> None:
    assert DEFAULT_TTL_S["market_data"] == 300
    assert DEFAULT_TTL_S["blockchain_explorers"] == 900
    assert DEFAULT_TTL_S["news"] == 3600
    assert DEFAULT_TTL_S["sentiment"] == 26 * 3600
    assert DEFAULT_TTL_S["onchain"] == 2 * 3600
    assert set(DEFAULT_TTL_S) == {c.value for c in Category}


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (0, Freshness.FRESH),
        (TTL, Freshness.FRESH),  # exactly the TTL is still fresh
        (TTL + 0.001, Freshness.AGING),
        (2 * TTL, Freshness.AGING),  # exactly twice the TTL is still aging
        (2 * TTL + 0.001, Freshness.STALE),
        (365 * 86_400, Freshness.STALE),
    ],
)
def test_age_against_ttl_gives_fresh_aging_or_stale(age: float, expected: Freshness) -> None:
    assert judge(ago(age), now=NOW, ttl_s=TTL) is expected


def test_a_payload_without_a_timestamp_is_unknown_not_fresh() -> None:
    assert judge(None, now=NOW, ttl_s=TTL) is Freshness.UNKNOWN
    assert age_s(None, now=NOW) is None


def test_a_timestamp_slightly_ahead_of_our_clock_is_drift_and_counts_as_fresh() -> None:
    assert judge(ago(-30), now=NOW, ttl_s=TTL) is Freshness.FRESH
    assert judge(ago(-FUTURE_TOLERANCE_S), now=NOW, ttl_s=TTL) is Freshness.FRESH


def test_a_timestamp_far_in_the_future_is_unknown_rather_than_fresh() -> None:
    assert judge(ago(-FUTURE_TOLERANCE_S - 1), now=NOW, ttl_s=TTL) is Freshness.UNKNOWN
    assert judge(NOW + timedelta(days=365), now=NOW, ttl_s=86_400) is Freshness.UNKNOWN
    assert judge(ago(-60), now=NOW, ttl_s=TTL, future_tolerance_s=10) is Freshness.UNKNOWN


def test_age_is_signed_seconds_and_naive_times_are_utc() -> None:
    assert age_s(ago(90), now=NOW) == 90.0
    assert age_s(ago(-5), now=NOW) == -5.0
    naive = ago(600).replace(tzinfo=None)
    assert age_s(naive, now=NOW) == 600.0
    assert judge(naive, now=NOW, ttl_s=TTL) is Freshness.AGING


def test_other_time_zones_are_compared_as_instants() -> None:
    tokyo = ago(100).astimezone(ZoneInfo("Asia/Tokyo"))
    assert age_s(tokyo, now=NOW) == 100.0


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), float("inf")])
def test_a_ttl_that_is_not_a_positive_number_is_a_programming_error(ttl: float) -> None:
    with pytest.raises(ValueError, match="ttl_s"):
        judge(NOW, now=NOW, ttl_s=ttl)


def test_freshness_values_are_the_design_vocabulary() -> None:
    assert [f.value for f in Freshness] == ["fresh", "aging", "stale", "unknown"]
