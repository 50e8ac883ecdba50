"""Providers' rate-limit headers become usage and block reports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from apiwatch.budget.headers import BlockReport, UsageReport, usage_from_headers

NOW = datetime(2026, 3, 14, 12, 0, 0, tzinfo=UTC)


def parse(headers: dict[str, str]) -> list[object]:
    return list(usage_from_headers(headers, now=NOW.timestamp()))


def test_binance_used_weight_1m_is_the_minute_figure_whatever_the_case() -> None:
    assert parse({"X-MBX-USED-WEIGHT-1M": "1234"}) == [UsageReport(window="minute", used=1234)]
    assert parse({"x-mbx-used-weight-1m": "7"}) == [UsageReport(window="minute", used=7)]


def test_binance_interval_letters_map_to_second_hour_and_day() -> None:
    reports = parse(
        {"X-MBX-USED-WEIGHT-1S": "3", "X-MBX-USED-WEIGHT-1H": "40", "X-MBX-USED-WEIGHT-1D": "500"}
    )
    assert reports == [
        UsageReport(window="second", used=3),
        UsageReport(window="hour", used=40),
        UsageReport(window="day", used=500),
    ]


def test_binance_multi_unit_intervals_are_ignored_as_they_match_no_window() -> None:
    assert parse({"X-MBX-USED-WEIGHT-5M": "90"}) == []


def test_binance_bare_used_weight_counts_as_minute_only_without_the_1m_header() -> None:
    assert parse({"X-MBX-USED-WEIGHT": "11"}) == [UsageReport(window="minute", used=11)]
    both = parse({"X-MBX-USED-WEIGHT": "11", "X-MBX-USED-WEIGHT-1M": "12"})
    assert both == [UsageReport(window="minute", used=12)]


def test_bybit_limit_and_remaining_become_used_of_limit_per_second_of_the_endpoint() -> None:
    reset_ms = int((NOW + timedelta(seconds=3)).timestamp() * 1000)
    reports = parse(
        {
            "X-Bapi-Limit": "100",
            "X-Bapi-Limit-Status": "99",
            "X-Bapi-Limit-Reset-Timestamp": str(reset_ms),
        }
    )
    assert reports == [
        UsageReport(
            window="second",
            used=1,
            limit=100,
            reset_at=NOW + timedelta(seconds=3),
            tier="endpoint",
        )
    ]


def test_bybit_remaining_without_limit_says_nothing_usable() -> None:
    assert parse({"X-Bapi-Limit-Status": "5"}) == []


def test_retry_after_in_seconds_blocks_until_now_plus_seconds() -> None:
    assert parse({"Retry-After": "120"}) == [BlockReport(until=NOW + timedelta(seconds=120))]


def test_retry_after_as_http_date_blocks_until_that_date() -> None:
    reports = parse({"retry-after": "Sat, 14 Mar 2026 12:05:00 GMT"})
    assert reports == [BlockReport(until=datetime(2026, 3, 14, 12, 5, tzinfo=UTC))]


def test_retry_after_in_the_past_or_zero_blocks_nothing() -> None:
    assert parse({"Retry-After": "0"}) == []
    assert parse({"Retry-After": "Sat, 14 Mar 2026 11:00:00 GMT"}) == []


def test_unparseable_headers_are_ignored() -> None:
    headers = {
        "X-MBX-USED-WEIGHT-1M": "lots",
        "X-Bapi-Limit": "100",
        "X-Bapi-Limit-Status": "n/a",
        "Retry-After": "soon",
    }
    assert parse(headers) == []
    assert parse({"Retry-After": "inf"}) == []


def test_binance_429_carries_both_usage_and_a_block() -> None:
    reports = parse({"X-MBX-USED-WEIGHT-1M": "6001", "Retry-After": "30"})
    assert reports == [
        UsageReport(window="minute", used=6001),
        BlockReport(until=NOW + timedelta(seconds=30)),
    ]
