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
    judge_book,
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
    # Order books are items, not a category: seconds, not minutes.
    assert DEFAULT_TTL_S["order_book"] == 10
    assert set(DEFAULT_TTL_S) == {c.value for c in Category} | {"order_book"}


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


# A book fetched at FETCHED, with a 10 s TTL and 66 s to its next collection (60 s + 6 s).
FETCHED = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("age_at_fetch", "since_fetch", "expected"),
    [
        (0.2, 0, Freshness.FRESH),
        (0.2, 59, Freshness.FRESH),  # between two collections on time: fresh, not stale
        (0.2, 75, Freshness.FRESH),  # 75.2 s ≤ 10 + 66
        (0.2, 80, Freshness.AGING),  # the next collection is late
        (0.2, 160, Freshness.STALE),  # collections stopped: 160.2 s > 2 x 76
        (15, 0, Freshness.AGING),  # already 15 s old when fetched, whatever came after
        (60, 1, Freshness.STALE),
    ],
)
def test_a_book_is_judged_at_its_fetch_and_against_its_schedule_since(
    age_at_fetch: float, since_fetch: float, expected: Freshness
) -> None:
    status = judge_book(
        FETCHED - timedelta(seconds=age_at_fetch),
        fetched_at=FETCHED,
        now=FETCHED + timedelta(seconds=since_fetch),
        ttl_s=10,
        refresh_s=66,
    )
    assert status is expected


def test_a_book_without_a_timestamp_is_unknown_and_a_negative_refresh_is_refused() -> None:
    assert (
        judge_book(None, fetched_at=FETCHED, now=FETCHED, ttl_s=10, refresh_s=66)
        is Freshness.UNKNOWN
    )
    with pytest.raises(ValueError, match="refresh_s"):
        judge_book(FETCHED, fetched_at=FETCHED, now=FETCHED, ttl_s=10, refresh_s=-1)
