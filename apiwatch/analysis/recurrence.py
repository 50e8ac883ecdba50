"""When a maintenance window recurs: "the latest start at or before t" and "the first start
after t", computed directly from the rule, never from a list of generated slots.

A rule is one of: every day at a local time; on given weekdays at a local time; on a day of
the month at a local time (a day the month lacks means its last day: the 31st is the 30th
in April and the 28th or 29th in February); or a cron expression (through `croniter`).
Local times are read in an IANA time zone (`zoneinfo`):
- a local time that does not exist (spring forward) is moved on by the gap: 02:30 on the
  night clocks go from 02:00 to 03:00 starts at 03:30;
- a local time that happens twice (fall back) starts at its first occurrence;
- cron follows croniter: a skipped time fires when the gap ends (03:00), a repeated one
  fires both times.

Each question costs a fixed, small number of steps whatever the rule and however far from
the window's first start: a window every minute for ten years answers as fast as a yearly
one. `Recurrence.between` is the only walk, and it stops after `limit` occurrences.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, croniter

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
KINDS = ("daily", "weekly", "monthly", "cron")


class RecurrenceError(ValueError):
    """A rule that cannot be used; `field` names the part that is wrong."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name`; RecurrenceError("timezone") when there is none such."""
    try:
        if not name or name.strip() != name or name.startswith(("/", ".")) or ".." in name:
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise RecurrenceError(
            "timezone", f"unknown time zone {name[:64]!r} (use an IANA name: Europe/Berlin)"
        ) from None


def parse_time(text: str) -> time:
    """`HH:MM` (24 h) as a time; RecurrenceError("at") otherwise."""
    try:
        hours, minutes = text.split(":")
        if len(hours) != 2 or len(minutes) != 2:
            raise ValueError(text)
        return time(int(hours), int(minutes))
    except ValueError:
        raise RecurrenceError(
            "at", f"must be a 24-hour time like 02:30, got {text[:16]!r}"
        ) from None


def _local(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The UTC moment of `at` on `day` in `tz` (fold=0: see the module docstring)."""
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def _month_day(year: int, month: int, day: int) -> date:
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def _add_months(year: int, month: int, step: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + step
    return index // 12, index % 12 + 1


@dataclass(frozen=True)
class Recurrence:
    """One rule in one time zone. Build it with `Recurrence.build`, which checks it."""

    kind: str
    tz: ZoneInfo
    at: time = time(0, 0)
    weekdays: frozenset[int] = frozenset()
    day: int = 1
    cron: str = ""

    @classmethod
    def build(
        cls,
        *,
        kind: str,
        timezone: str = "UTC",
        at: str | None = None,
        weekdays: list[str] | None = None,
        day: int | None = None,
        cron: str | None = None,
    ) -> Recurrence:
        tz = zone(timezone)
        if kind not in KINDS:
            raise RecurrenceError("every", f"must be one of {', '.join(KINDS)}")
        extra = {
            "at": at is not None and kind == "cron",
            "weekdays": weekdays is not None and kind != "weekly",
            "day": day is not None and kind != "monthly",
            "cron": cron is not None and kind != "cron",
        }
        for name, wrong in extra.items():
            if wrong:
                raise RecurrenceError(name, f"does not apply to every: {kind}")
        if kind == "cron":
            if not cron or not croniter.is_valid(cron):
                raise RecurrenceError("cron", f"not a valid cron expression: {(cron or '')[:64]!r}")
            rule = cls(kind, tz, cron=cron)
            try:
                croniter(cron, datetime(2000, 1, 1, tzinfo=tz)).get_next(datetime)
            except (CroniterBadDateError, CroniterBadCronError):
                raise RecurrenceError("cron", f"{cron!r} never matches a date") from None
            return rule
        if at is None:
            raise RecurrenceError("at", f"every: {kind} needs the local time it starts at")
        clock = parse_time(at)
        if kind == "weekly":
            if not weekdays:
                raise RecurrenceError("weekdays", "name at least one day (mon … sun)")
            bad = [d for d in weekdays if d not in WEEKDAYS]
            if bad:
                raise RecurrenceError("weekdays", f"unknown day {bad[0]!r} (use mon … sun)")
            return cls(kind, tz, at=clock, weekdays=frozenset(WEEKDAYS.index(d) for d in weekdays))
        if kind == "monthly":
            if day is None or not 1 <= day <= 31:
                raise RecurrenceError("day", "the day of the month, 1 to 31")
            return cls(kind, tz, at=clock, day=day)
        return cls(kind, tz, at=clock)

    # -- the two questions -----------------------------------------------------------------

    def last_start(self, t: datetime) -> datetime:
        """The latest start at or before `t` (UTC)."""
        if self.kind == "cron":
            # get_prev is strictly before: ask from a second later so `t` itself counts, and
            # step back once more past a start inside that second (at most one: croniter's
            # finest unit is the second).
            steps = croniter(self.cron, (t + timedelta(seconds=1)).astimezone(self.tz))
            found = steps.get_prev(datetime).astimezone(UTC)
            return found if found <= t else steps.get_prev(datetime).astimezone(UTC)
        local_day = t.astimezone(self.tz).date()
        for start in self._starts_back(local_day):
            if start <= t:
                return start
        raise AssertionError("a rule with no start in the last two months")  # pragma: no cover

    def next_start(self, t: datetime) -> datetime:
        """The first start strictly after `t` (UTC)."""
        if self.kind == "cron":
            return croniter(self.cron, t.astimezone(self.tz)).get_next(datetime).astimezone(UTC)
        local_day = t.astimezone(self.tz).date()
        for start in self._starts_forward(local_day - timedelta(days=1)):
            if start > t:
                return start
        raise AssertionError("a rule with no start in the next two months")  # pragma: no cover

    def between(self, start: datetime, end: datetime, *, limit: int) -> Iterator[datetime]:
        """Starts in [start, end), newest first, at most `limit` of them."""
        t = end - timedelta(microseconds=1)
        for _ in range(limit):
            try:
                found = self.last_start(t)
            except (OverflowError, ValueError):  # before the calendar's (or croniter's) start
                return
            if found < start:
                return
            yield found
            t = found - timedelta(microseconds=1)

    # -- candidate days around a date (bounded: at most 62 days either way) ----------------

    def _starts_back(self, day: date) -> Iterator[datetime]:
        # A day's start may fall on the day before or after in UTC: begin one day later.
        if self.kind == "monthly":
            year, month = day.year, day.month
            year, month = _add_months(year, month, 1)
            for _ in range(4):
                yield _local(_month_day(year, month, self.day), self.at, self.tz)
                year, month = _add_months(year, month, -1)
            return
        current = day + timedelta(days=1)
        for _ in range(10):
            if self.kind == "daily" or current.weekday() in self.weekdays:
                yield _local(current, self.at, self.tz)
            current -= timedelta(days=1)

    def _starts_forward(self, day: date) -> Iterator[datetime]:
        if self.kind == "monthly":
            year, month = _add_months(day.year, day.month, -1)
            for _ in range(4):
                yield _local(_month_day(year, month, self.day), self.at, self.tz)
                year, month = _add_months(year, month, 1)
            return
        current = day
        for _ in range(10):
            if self.kind == "daily" or current.weekday() in self.weekdays:
                yield _local(current, self.at, self.tz)
            current += timedelta(days=1)
