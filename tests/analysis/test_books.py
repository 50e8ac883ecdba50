"""Order-book and ticker integrity checks: a faithful book passes every one, and each hostile
book fails exactly the check that names its fault; summaries are exact decimals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from apiwatch.analysis.books import (
    Book,
    BookTracker,
    Thresholds,
    static_checks,
    summarize,
    ticker_check,
)

NOW = datetime(2026, 3, 14, 12, 0, 0, tzinfo=UTC)
D = Decimal


def book(
    bids: list[tuple[str, str]] | None = None,
    asks: list[tuple[str, str]] | None = None,
    *,
    update_id: int | None = 100,
    age_s: float | None = 0.2,
) -> Book:
    bids = [("65485.47", "1.5"), ("65485.00", "2"), ("65484.10", "0.75")] if bids is None else bids
    asks = [("65486.13", "0.4"), ("65486.50", "1"), ("65487.00", "3")] if asks is None else asks
    return Book(
        bids=tuple((D(p), D(s)) for p, s in bids),
        asks=tuple((D(p), D(s)) for p, s in asks),
        update_id=update_id,
        timestamp=None if age_s is None else NOW - timedelta(seconds=age_s),
    )


def checks_of(failures: list) -> list[str]:
    return [f.check for f in failures]


def test_a_faithful_book_passes_every_static_check() -> None:
    assert static_checks(book()) == []


def test_the_summary_is_exact_decimal_arithmetic() -> None:
    summary = summarize(book(), band_pct=1.0)
    assert summary.best_bid == D("65485.47") and summary.best_ask == D("65486.13")
    assert summary.mid == D("65485.80")
    # (65486.13 - 65485.47) / 65485.80 * 10000, to four places, with no float on the way.
    assert summary.spread_bps == D("0.1008")
    assert summary.depth == (
        D("65485.47") * D("1.5")
        + D("65485.00") * 2
        + D("65484.10") * D("0.75")
        + D("65486.13") * D("0.4")
        + D("65486.50")
        + D("65487.00") * 3
    )
    assert summary.as_dict()["mid"] == "65485.80"


def test_depth_counts_only_levels_within_the_band_around_the_mid() -> None:
    far = book(bids=[("100", "1"), ("90", "50")], asks=[("101", "1"), ("120", "50")])
    assert summarize(far, band_pct=1.0).depth == D("100") + D("101")


@pytest.mark.parametrize(
    ("bids", "asks", "check", "detail"),
    [
        ([("101", "1")], [("100", "1")], "crossed", "best bid 101 above best ask 100"),
        ([("100", "1")], [("100", "2")], "locked", "best bid equals best ask at 100"),
        ([], [("100", "1")], "empty_side", "no bids"),
        ([("99", "0")], [("100", "1")], "non_positive", "bids[0] has a size of 0"),
        ([("99", "1")], [("-1", "1"), ("100", "1")], "non_positive", "asks[0] has a price of -1"),
        ([("99", "1"), ("99", "2")], [("100", "1")], "duplicate_level", "bids list price 99 twice"),
        ([("98", "1"), ("99", "2")], [("100", "1")], "unordered", "bids not strictly descending"),
        ([("99", "1")], [("101", "1"), ("100", "1")], "unordered", "asks not strictly ascending"),
    ],
)
def test_each_hostile_book_fails_the_check_that_names_its_fault(
    bids: list[tuple[str, str]], asks: list[tuple[str, str]], check: str, detail: str
) -> None:
    failures = static_checks(book(bids, asks))
    assert check in checks_of(failures)
    assert any(detail in f.detail for f in failures), failures
    assert all(f.reason().startswith(f"book_integrity: {f.check}: ") for f in failures)


def test_a_book_older_than_the_ttl_is_stale_and_a_fresh_one_is_not() -> None:
    tracker = BookTracker()
    limits = Thresholds(ttl_s=10)
    _, failures = tracker.judge(
        "bybit", "book:BTC-USDT", book(age_s=45), now=NOW, thresholds=limits
    )
    assert checks_of(failures) == ["stale"]
    assert "45.0 s old, over the 10 s TTL" in failures[0].detail
    _, failures = tracker.judge("okx", "book:BTC-USDT", book(age_s=9), now=NOW, thresholds=limits)
    assert failures == []


def test_an_update_id_going_backwards_or_standing_still_while_time_moves_fails() -> None:
    tracker = BookTracker()
    limits = Thresholds()
    assert tracker.judge("bybit", "b", book(update_id=500), now=NOW, thresholds=limits)[1] == []
    later = NOW + timedelta(seconds=5)
    # The same book time and id again is the same book, fetched twice: nothing wrong.
    assert tracker.judge("bybit", "b", book(update_id=500), now=later, thresholds=limits)[1] == []
    # Its own time moved 5 s on, its id did not.
    moved = book(update_id=500, age_s=-4.8)
    _, frozen = tracker.judge("bybit", "b", moved, now=later, thresholds=limits)
    assert checks_of(frozen) == ["update_id_frozen"]
    assert "stood at 500 while time moved 5.0 s" in frozen[0].detail
    _, back = tracker.judge(
        "bybit",
        "b",
        book(update_id=420, age_s=-9.8),
        now=later + timedelta(seconds=5),
        thresholds=limits,
    )
    assert checks_of(back) == ["update_id_backwards"]
    assert "from 500 to 420" in back[0].detail
    # Forward again from the last good id: passes.
    ok = tracker.judge(
        "bybit",
        "b",
        book(update_id=501, age_s=-10.8),
        now=later + timedelta(seconds=6),
        thresholds=limits,
    )
    assert ok[1] == []


def test_without_a_book_time_the_fetch_time_tells_a_frozen_update_id() -> None:
    # Binance's depth carries no timestamp: our clock is what moved.
    tracker = BookTracker()
    first = tracker.judge("binance", "b", book(age_s=None), now=NOW, thresholds=Thresholds())
    assert first[1] == []
    _, again = tracker.judge(
        "binance", "b", book(age_s=None), now=NOW + timedelta(seconds=60), thresholds=Thresholds()
    )
    assert checks_of(again) == ["update_id_frozen"]


def test_a_spread_over_the_threshold_is_wide() -> None:
    wide = book(bids=[("99", "1")], asks=[("101", "1")])  # 200 bps
    _, failures = BookTracker().judge("okx", "b", wide, now=NOW, thresholds=Thresholds())
    assert checks_of(failures) == ["wide_spread"]
    assert "over 50 bps" in failures[0].detail


def _steady(tracker: BookTracker, count: int, *, size: str = "1") -> datetime:
    moment = NOW
    for index in range(count):
        moment = NOW + timedelta(seconds=index)
        spread_ask = "100.05" if index % 2 else "100.06"  # ~5-6 bps, a little jitter
        b = book([("100", size)], [(spread_ask, size)], update_id=index, age_s=None)
        assert tracker.judge("okx", "b", b, now=moment, thresholds=Thresholds())[1] == []
    return moment


def test_a_spread_far_outside_its_recent_range_is_an_anomaly_before_it_is_wide() -> None:
    tracker = BookTracker()
    moment = _steady(tracker, 12)
    jump = book([("100", "1")], [("100.30", "1")], update_id=99, age_s=None)  # 30 bps < 50
    _, failures = tracker.judge(
        "okx", "b", jump, now=moment + timedelta(seconds=1), thresholds=Thresholds()
    )
    assert checks_of(failures) == ["spread_anomaly"]


def test_depth_collapsing_against_its_recent_median_fails_and_is_not_learnt() -> None:
    tracker = BookTracker()
    moment = _steady(tracker, 12, size="10")
    thin = book([("100", "0.5")], [("100.05", "0.5")], update_id=50, age_s=None)
    _, failures = tracker.judge(
        "okx", "b", thin, now=moment + timedelta(seconds=1), thresholds=Thresholds()
    )
    assert checks_of(failures) == ["depth_collapse"]
    assert "fell 95 % below" in failures[0].detail
    # The thin book did not join the baseline: the next thin one fails the same way.
    thin2 = book([("100", "0.5")], [("100.05", "0.5")], update_id=51, age_s=None)
    _, again = tracker.judge(
        "okx", "b", thin2, now=moment + timedelta(seconds=2), thresholds=Thresholds()
    )
    assert checks_of(again) == ["depth_collapse"]


def test_nothing_is_judged_against_a_baseline_before_it_has_min_history_books() -> None:
    tracker = BookTracker()
    moment = _steady(tracker, 3, size="10")
    thin = book([("100", "0.5")], [("100.05", "0.5")], update_id=50, age_s=None)
    _, failures = tracker.judge(
        "okx", "b", thin, now=moment + timedelta(seconds=1), thresholds=Thresholds()
    )
    assert failures == []


def test_venues_and_items_keep_histories_of_their_own() -> None:
    tracker = BookTracker()
    tracker.judge("okx", "b", book(update_id=500), now=NOW, thresholds=Thresholds())
    later = NOW + timedelta(seconds=5)
    moved = book(update_id=500, age_s=-4.8)
    # Shared history would call this frozen (same id, time moved); Bybit's is its own.
    assert tracker.judge("bybit", "b", moved, now=later, thresholds=Thresholds())[1] == []
    assert tracker.judge("okx", "other", moved, now=later, thresholds=Thresholds())[1] == []
    assert checks_of(tracker.judge("okx", "b", moved, now=later, thresholds=Thresholds())[1]) == [
        "update_id_frozen"
    ]


def test_a_ticker_last_price_beyond_its_own_bid_or_ask_fails_past_the_tolerance() -> None:
    assert ticker_check(D("100.10"), D("100"), D("100.2"), tolerance_bps=25) is None
    # 0.2 % above the ask: 20 bps, inside a 25 bps tolerance.
    assert ticker_check(D("100.40"), D("100"), D("100.2"), tolerance_bps=25) is None
    above = ticker_check(D("100.80"), D("100"), D("100.2"), tolerance_bps=25)
    assert above is not None and above.check == "last_outside_book"
    assert "above the best ask 100.2" in above.detail
    below = ticker_check(D("99"), D("100"), D("100.2"), tolerance_bps=25)
    assert below is not None and "below the best bid 100" in below.detail
    assert ticker_check(D("99"), None, D("100.2"), tolerance_bps=25) is None


def test_a_quiet_update_id_is_frozen_only_after_frozen_after_s_since_it_first_appeared() -> None:
    tracker = BookTracker()
    limits = Thresholds(frozen_after_s=5)
    assert (
        tracker.judge("bybit", "b", book(update_id=7, age_s=0), now=NOW, thresholds=limits)[1] == []
    )
    # 3 s later, same id: a quiet moment, not yet frozen.
    at3 = NOW + timedelta(seconds=3)
    assert (
        tracker.judge("bybit", "b", book(update_id=7, age_s=-3), now=at3, thresholds=limits)[1]
        == []
    )
    # 6 s after the id first appeared (3 s after the last look): frozen.
    at6 = NOW + timedelta(seconds=6)
    _, frozen = tracker.judge("bybit", "b", book(update_id=7, age_s=-6), now=at6, thresholds=limits)
    assert checks_of(frozen) == ["update_id_frozen"]
    assert "while time moved 6.0 s" in frozen[0].detail
