"""Recurrence math of maintenance windows: daily, weekly, monthly (the 31st in short months),
cron, DST transitions, and answers in bounded work however long a window has recurred."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from apiwatch.alerting.maintenance import (
    MAX_EXCLUDED_OCCURRENCES,
    MaintenanceError,
    MaintenanceWindow,
)
from apiwatch.analysis.recurrence import Recurrence, RecurrenceError


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def window(recurrence: dict, duration_s: int = 1800, **extra) -> MaintenanceWindow:
    return MaintenanceWindow(
        id="1",
        title="t",
        matchers={"provider": "binance"},
        source="api",
        recurrence=recurrence,
        duration_s=duration_s,
        **extra,
    )


def test_daily_in_berlin_is_active_inside_and_not_outside() -> None:
    w = window({"every": "daily", "at": "02:00"}, timezone="Europe/Berlin")
    # 02:00 CET (winter) is 01:00 UTC.
    assert w.occurrence_at(utc(2026, 1, 10, 1, 0)) is not None
    assert w.occurrence_at(utc(2026, 1, 10, 1, 29, 59)) is not None
    assert w.occurrence_at(utc(2026, 1, 10, 1, 30)) is None
    assert w.occurrence_at(utc(2026, 1, 10, 0, 59)) is None
    nxt = w.next_occurrence(utc(2026, 1, 10, 1, 10))
    assert nxt is not None and nxt.starts_at == utc(2026, 1, 11, 1, 0)


def test_daily_across_spring_forward_and_fall_back_in_berlin() -> None:
    w = window({"every": "daily", "at": "02:30"}, timezone="Europe/Berlin")
    # 2026-03-29: 02:00 → 03:00; 02:30 does not exist and moves on by the gap (03:30 CEST).
    spring = w.next_occurrence(utc(2026, 3, 28, 12))
    assert spring is not None and spring.starts_at == utc(2026, 3, 29, 1, 30)
    after = w.next_occurrence(spring.starts_at)
    assert after is not None and after.starts_at == utc(2026, 3, 30, 0, 30)  # 02:30 CEST
    # 2026-10-25: 03:00 → 02:00; 02:30 happens twice and starts at the first (CEST).
    fall = w.next_occurrence(utc(2026, 10, 24, 12))
    assert fall is not None and fall.starts_at == utc(2026, 10, 25, 0, 30)
    assert w.next_occurrence(fall.starts_at).starts_at == utc(2026, 10, 26, 1, 30)  # CET
    # One start that day, not two.
    assert w.occurrence_at(utc(2026, 10, 25, 1, 40)) is None


def test_weekly_on_given_days_in_new_york_across_dst() -> None:
    w = window(
        {"every": "weekly", "at": "23:00", "weekdays": ["sat", "sun"]},
        timezone="America/New_York",
        duration_s=3600,
    )
    # Sat 2026-03-07 23:00 EST = Sun 04:00 UTC; Sun 2026-03-08 (DST starts) 23:00 EDT = 03:00 UTC.
    assert w.next_occurrence(utc(2026, 3, 6)).starts_at == utc(2026, 3, 8, 4)
    assert w.next_occurrence(utc(2026, 3, 8, 4)).starts_at == utc(2026, 3, 9, 3)
    # Then nothing until Saturday.
    assert w.next_occurrence(utc(2026, 3, 9, 3)).starts_at == utc(2026, 3, 15, 3)
    assert w.occurrence_at(utc(2026, 3, 9, 3, 59)) is not None
    assert w.occurrence_at(utc(2026, 3, 10, 3, 30)) is None  # a Monday night


def test_monthly_on_the_31st_falls_on_the_last_day_of_short_months() -> None:
    w = window({"every": "monthly", "at": "12:00", "day": 31})
    starts, t = [], utc(2026, 1, 1)
    for _ in range(5):
        found = w.next_occurrence(t)
        assert found is not None
        starts.append(found.starts_at)
        t = found.starts_at
    assert starts == [
        utc(2026, 1, 31, 12),
        utc(2026, 2, 28, 12),
        utc(2026, 3, 31, 12),
        utc(2026, 4, 30, 12),
        utc(2026, 5, 31, 12),
    ]
    leap = window({"every": "monthly", "at": "12:00", "day": 30})
    assert leap.next_occurrence(utc(2028, 2, 1)).starts_at == utc(2028, 2, 29, 12)
    assert leap.occurrence_at(utc(2028, 2, 29, 12, 10)) is not None


def test_cron_on_weekdays_and_its_dst_behaviour() -> None:
    w = window({"every": "cron", "cron": "0 2 * * 1-5"}, timezone="Europe/Berlin")
    # Friday 2026-01-09 02:00 CET, then Monday 2026-01-12.
    assert w.next_occurrence(utc(2026, 1, 8, 2)).starts_at == utc(2026, 1, 9, 1)
    assert w.next_occurrence(utc(2026, 1, 9, 1)).starts_at == utc(2026, 1, 12, 1)
    assert w.occurrence_at(utc(2026, 1, 12, 1, 15)) is not None
    assert w.occurrence_at(utc(2026, 1, 11, 1, 15)) is None  # Sunday
    spring = window({"every": "cron", "cron": "30 2 * * *"}, timezone="Europe/Berlin")
    # croniter: a skipped local time fires when the gap ends (03:00 CEST = 01:00 UTC).
    assert spring.next_occurrence(utc(2026, 3, 28, 12)).starts_at == utc(2026, 3, 29, 1)


def test_every_minute_for_ten_years_answers_from_the_rule() -> None:
    first = utc(2026, 1, 1)
    w = window({"every": "cron", "cron": "* * * * *"}, duration_s=30, starts_at=first)
    later = utc(2036, 1, 1, 0, 0, 15)  # ten years (3,652 days) after the first start
    current = w.occurrence_at(later)
    assert current is not None and current.starts_at == utc(2036, 1, 1)
    assert w.occurrence_at(later + timedelta(seconds=20)) is None
    assert w.next_occurrence(later).starts_at == utc(2036, 1, 1, 0, 1)
    # The only walk stops at its limit: 90 days of minutes is 129,600 occurrences.
    spans = w.occurrences_between(later - timedelta(days=90), later, limit=50)
    assert len(spans) == 50 and spans[0].starts_at == utc(2036, 1, 1)
    # What the SLO figures ask by default: the newest MAX_EXCLUDED_OCCURRENCES, no more.
    default = w.occurrences_between(later - timedelta(days=90), later)
    assert len(default) == MAX_EXCLUDED_OCCURRENCES
    assert default[-1].starts_at == utc(2036, 1, 1) - timedelta(
        minutes=MAX_EXCLUDED_OCCURRENCES - 1
    )
    daily = window({"every": "daily", "at": "00:00"}, starts_at=first)
    assert daily.occurrence_at(later).starts_at == utc(2036, 1, 1)


def test_bounds_of_a_recurring_window() -> None:
    w = window(
        {"every": "daily", "at": "00:00"}, starts_at=utc(2026, 5, 1), ends_at=utc(2026, 5, 3)
    )
    assert w.occurrence_at(utc(2026, 4, 30, 0, 5)) is None
    assert w.next_occurrence(utc(2026, 4, 1)).starts_at == utc(2026, 5, 1)
    assert w.occurrence_at(utc(2026, 5, 2, 0, 5)) is not None
    assert w.next_occurrence(utc(2026, 5, 2, 0, 5)) is None
    # The last occurrence before `ends_at` lasts its full duration, past `ends_at`.
    long = window({"every": "daily", "at": "00:00"}, 36 * 3600, ends_at=utc(2026, 5, 3))
    assert long.occurrence_at(utc(2026, 5, 3, 6)).starts_at == utc(2026, 5, 2)
    assert long.occurrence_at(utc(2026, 5, 3, 12)) is None


def test_one_off_window() -> None:
    w = MaintenanceWindow(
        id="1",
        title="t",
        matchers={"provider": "x"},
        source="api",
        starts_at=utc(2026, 5, 1),
        duration_s=60,
    )
    assert w.occurrence_at(utc(2026, 5, 1, 0, 0, 59)) is not None
    assert w.occurrence_at(utc(2026, 5, 1, 0, 1)) is None
    assert w.next_occurrence(utc(2026, 4, 1)).starts_at == utc(2026, 5, 1)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"recurrence": {"every": "daily", "at": "2:00"}, "duration_s": 60}, "recurrence.at"),
        (
            {"recurrence": {"every": "cron", "cron": "61 * * * *"}, "duration_s": 60},
            "recurrence.cron",
        ),
        (
            {"recurrence": {"every": "cron", "cron": "0 0 30 2 *"}, "duration_s": 60},
            "recurrence.cron",
        ),
        (
            {
                "recurrence": {"every": "weekly", "at": "01:00", "weekdays": ["xyz"]},
                "duration_s": 60,
            },
            "recurrence.weekdays",
        ),
        ({"recurrence": {"every": "daily", "at": "01:00"}}, "duration_s"),
        ({"recurrence": {"every": "daily", "at": "01:00"}, "duration_s": 0}, "duration_s"),
        (
            {
                "recurrence": {"every": "daily", "at": "01:00"},
                "duration_s": 9,
                "timezone": "Mars/Base",
            },
            "timezone",
        ),
        ({"starts_at": utc(2026, 1, 2), "ends_at": utc(2026, 1, 1)}, "ends_at"),
        ({"starts_at": utc(2026, 1, 2)}, "ends_at"),
        ({"duration_s": 60}, "starts_at"),
    ],
)
def test_a_bad_window_names_its_field(fields: dict, field: str) -> None:
    with pytest.raises(MaintenanceError) as caught:
        MaintenanceWindow(id="1", title="t", matchers={"provider": "x"}, source="api", **fields)
    assert caught.value.field == field


def test_the_rule_alone_refuses_an_unknown_kind() -> None:
    with pytest.raises(RecurrenceError) as caught:
        Recurrence.build(kind="hourly", at="01:00")
    assert caught.value.field == "every"
