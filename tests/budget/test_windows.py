"""Fixed windows are aligned to the UTC clock, as Binance counts them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apiwatch.budget.windows import WINDOWS, period, periods, to_datetime, to_unix


def ts(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("window", "start", "end"),
    [
        ("second", (2026, 3, 14, 0, 1, 23), (2026, 3, 14, 0, 1, 24)),
        ("minute", (2026, 3, 14, 0, 1, 0), (2026, 3, 14, 0, 2, 0)),
        ("hour", (2026, 3, 14, 0, 0, 0), (2026, 3, 14, 1, 0, 0)),
        ("day", (2026, 3, 14), (2026, 3, 15)),
        ("month", (2026, 3, 1), (2026, 4, 1)),
    ],
)
def test_request_at_00_01_23_falls_in_the_clock_aligned_period(
    window: str, start: tuple[int, ...], end: tuple[int, ...]
) -> None:
    now = ts(2026, 3, 14, 0, 1, 23) + 0.4
    current = period(window, now)
    assert (current.start, current.end) == (ts(*start), ts(*end))


def test_period_boundary_belongs_to_the_new_period() -> None:
    assert period("minute", ts(2026, 3, 14, 0, 2, 0)).start == ts(2026, 3, 14, 0, 2, 0)
    assert period("minute", ts(2026, 3, 14, 0, 2, 0) - 0.001).start == ts(2026, 3, 14, 0, 1, 0)


def test_month_is_a_calendar_month_in_utc_including_february_and_year_end() -> None:
    february = period("month", ts(2028, 2, 29, 23, 59, 59))
    assert (february.start, february.end) == (ts(2028, 2, 1), ts(2028, 3, 1))
    december = period("month", ts(2026, 12, 31, 12))
    assert (december.start, december.end) == (ts(2026, 12, 1), ts(2027, 1, 1))
    # The cached month must not leak into the next one.
    assert period("month", ts(2027, 1, 1)).start == ts(2027, 1, 1)
    assert period("month", ts(2026, 12, 31, 23, 59, 59)).start == ts(2026, 12, 1)


def test_periods_lists_every_window_shortest_first() -> None:
    assert [p.window for p in periods(ts(2026, 3, 14))] == list(WINDOWS)


def test_unknown_window_is_rejected_with_the_known_names() -> None:
    with pytest.raises(ValueError, match="fortnight"):
        period("fortnight", 0.0)


def test_times_convert_between_unix_seconds_and_utc_datetimes() -> None:
    moment = datetime(2026, 3, 14, 12, tzinfo=UTC)
    assert to_datetime(to_unix(moment)) == moment
    assert to_unix(datetime(2026, 3, 14, 12)) == moment.timestamp()  # naive is UTC
    assert to_unix(12.5) == 12.5
