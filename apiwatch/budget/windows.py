"""Fixed rate-limit windows aligned to the clock: which period a moment falls in.

A window is one of `second`, `minute`, `hour`, `day`, `month`, or `<n>s`, a window of any
whole number of seconds (`2s` for OKX's "20 requests per 2 seconds", `5s` for Bybit's IP
limit): the names `RateLimits.windows()` gives in the catalogue. Periods are fixed buckets
aligned to UTC, the way Binance counts: a request at 00:01:23 belongs to the 00:01:00
minute, a `2s` window starts on every even unix second, and a month is a calendar month in
UTC. Everything here is pure arithmetic on unix seconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

WINDOWS: tuple[str, ...] = ("second", "minute", "hour", "day", "month")
_WINDOW_SET = frozenset(WINDOWS)

# Unix time has no leap seconds, so the first four windows are exact fixed lengths.
_FIXED_SECONDS: dict[str, int] = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_CUSTOM = re.compile(r"^([1-9][0-9]{0,7})s$")


@dataclass(frozen=True, slots=True)
class Period:
    """One window's current bucket: `start <= t < end`, in unix seconds."""

    window: str
    start: float
    end: float

    @property
    def length(self) -> float:
        return self.end - self.start


def check_window(window: str) -> str:
    """Return `window` if it is a known window name or `<n>s`, else raise ValueError."""
    if window not in _WINDOW_SET and not _CUSTOM.match(window):
        raise ValueError(
            f"unknown rate-limit window {window!r}; expected one of {WINDOWS} or '<n>s'"
        )
    return window


def custom_window(seconds: int) -> str:
    """The name of a window of `seconds` seconds: `2s`."""
    name = f"{seconds}s"
    check_window(name)
    return name


def window_seconds(window: str) -> float:
    """A window's nominal length in seconds (a month counts as 30 days)."""
    match = _CUSTOM.match(window)
    if match:
        return float(match.group(1))
    if window == "month":
        return 30 * 86400.0
    check_window(window)
    return float(_FIXED_SECONDS[window])


def _month_bounds(now: float) -> tuple[float, float]:
    moment = datetime.fromtimestamp(now, UTC)
    start = datetime(moment.year, moment.month, 1, tzinfo=UTC)
    if moment.month == 12:
        end = datetime(moment.year + 1, 1, 1, tzinfo=UTC)
    else:
        end = datetime(moment.year, moment.month + 1, 1, tzinfo=UTC)
    return start.timestamp(), end.timestamp()


# The gate asks for every window on every request; building datetimes for the month each
# time would dominate its cost, so the last month's bounds are kept (a month is long).
_month_cache: tuple[float, float] = (0.0, 0.0)


def period(window: str, now: float) -> Period:
    """The period of `window` that contains the unix time `now`."""
    global _month_cache
    length = _FIXED_SECONDS.get(window)
    if length is None and (match := _CUSTOM.match(window)):
        length = int(match.group(1))
    if length is not None:
        start = float(now // length * length)
        return Period(window, start, start + length)
    if window != "month":
        check_window(window)
    start, end = _month_cache
    if not start <= now < end:
        start, end = _month_bounds(now)
        _month_cache = (start, end)
    return Period(window, start, end)


def periods(now: float) -> tuple[Period, ...]:
    """The current period of every window, in `WINDOWS` order (shortest first)."""
    return tuple(period(window, now) for window in WINDOWS)


def to_datetime(unix_seconds: float) -> datetime:
    return datetime.fromtimestamp(unix_seconds, UTC)


def to_unix(moment: datetime | float) -> float:
    """Accept either a timezone-aware datetime or unix seconds; naive datetimes are UTC."""
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    return float(moment)
