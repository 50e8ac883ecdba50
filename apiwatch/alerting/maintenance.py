"""Maintenance windows: planned time in which matching alerts are held (reason
`maintenance`), SLO figures leave the time out and the status page shows a notice.

A window is one-off (`starts_at` to `ends_at`, or `starts_at` plus `duration_s`) or recurring
(a `recurrence` rule in a time zone, each occurrence lasting `duration_s`, optionally only
from `starts_at` and until `ends_at`). It matches alerts like a silence does (`matchers`:
rule, provider, severity, category, fingerprint; exact or glob). Windows come from the
database (created through the API, `source: api`) or from the maintenance file
(`source: file`, read-only through the API); every process reads the same ones.

"Active at t" and "next start after t" are answered from the rule (`analysis.recurrence`),
never from a list of occurrences.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from apiwatch.alerting.model import AlertNotice
from apiwatch.alerting.silences import MATCHER_FIELDS, matchers_hold
from apiwatch.analysis.recurrence import Recurrence, RecurrenceError, zone

Source = Literal["api", "file"]
# How far ahead the status page (and `upcoming`) look.
UPCOMING = timedelta(days=7)
# The most occurrences of one window an SLO figure leaves out (the newest ones): a window
# recurring every minute over 90 days would otherwise cost 129,600 spans per question, and
# every partly covered hour a read of raw rows. A daily window over 90 days has 90.
MAX_EXCLUDED_OCCURRENCES = 500
MAX_DURATION_S = 90 * 86400


class MaintenanceError(ValueError):
    """A window that cannot be used; `field` names the part that is wrong (`recurrence.cron`)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


@dataclass(frozen=True)
class Occurrence:
    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True)
class MaintenanceWindow:
    id: str
    title: str
    matchers: Mapping[str, str]
    source: Source
    message: str = ""
    timezone: str = "UTC"
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    duration_s: int | None = None
    recurrence: Mapping[str, Any] | None = None
    created_by: str = ""
    # Where a file window was read: `path:line`.
    origin: str = ""
    rule: Recurrence | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        check(self)

    @property
    def duration(self) -> timedelta:
        if self.recurrence is None and self.ends_at is not None and self.starts_at is not None:
            return self.ends_at - self.starts_at
        return timedelta(seconds=self.duration_s or 0)

    # -- time ------------------------------------------------------------------------------

    def occurrence_at(self, t: datetime) -> Occurrence | None:
        """The occurrence in force at `t`, if any."""
        if self.rule is None:
            assert self.starts_at is not None
            end = self.starts_at + self.duration
            return Occurrence(self.starts_at, end) if self.starts_at <= t < end else None
        if self.starts_at is not None and t < self.starts_at:
            return None
        try:
            start = self.rule.last_start(t)
            if self.ends_at is not None and start >= self.ends_at:
                # No start from `ends_at` on; the last one before may still last past it.
                start = self.rule.last_start(self.ends_at - timedelta(microseconds=1))
        except (OverflowError, ValueError):  # at the ends of the calendar: no occurrence
            return None
        if self.starts_at is not None and start < self.starts_at:
            return None
        end = start + self.duration
        return Occurrence(start, end) if t < end else None

    def next_occurrence(self, t: datetime) -> Occurrence | None:
        """The first occurrence starting strictly after `t`, if there is one."""
        if self.rule is None:
            assert self.starts_at is not None
            return (
                Occurrence(self.starts_at, self.starts_at + self.duration)
                if self.starts_at > t
                else None
            )
        after = t
        if self.starts_at is not None and self.starts_at > t:
            after = self.starts_at - timedelta(microseconds=1)
        try:
            start = self.rule.next_start(after)
        except (OverflowError, ValueError):
            return None
        if self.ends_at is not None and start >= self.ends_at:
            return None
        return Occurrence(start, start + self.duration)

    def occurrences_between(
        self, start: datetime, end: datetime, *, limit: int = MAX_EXCLUDED_OCCURRENCES
    ) -> list[Occurrence]:
        """Occurrences overlapping [start, end), newest first, at most `limit`."""
        if self.rule is None:
            found = self.occurrence_at(self.starts_at) if self.starts_at else None
            ok = found is not None and found.starts_at < end and found.ends_at > start
            return [found] if ok and found is not None else []
        lo = start - self.duration
        if self.starts_at is not None:
            lo = max(lo, self.starts_at)
        hi = end if self.ends_at is None else min(end, self.ends_at)
        if hi <= lo:
            return []
        return [
            Occurrence(s, s + self.duration)
            for s in self.rule.between(lo, hi, limit=limit)
            if s + self.duration > start
        ]

    def matches(self, notice: AlertNotice, now: datetime) -> bool:
        return self.occurrence_at(now) is not None and matchers_hold(self.matchers, notice)

    # -- output ----------------------------------------------------------------------------

    def as_dict(self, now: datetime) -> dict[str, Any]:
        active = self.occurrence_at(now)
        upcoming = self.next_occurrence(now)
        return {
            "id": self.id,
            "source": self.source,
            "origin": self.origin or None,
            "title": self.title,
            "message": self.message,
            "matchers": dict(self.matchers),
            "timezone": self.timezone,
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "duration_s": int(self.duration.total_seconds()),
            "recurrence": dict(self.recurrence) if self.recurrence else None,
            "created_by": self.created_by or None,
            "active": active is not None,
            "current": None if active is None else _occ(active),
            "next": None if upcoming is None else _occ(upcoming),
            "upcoming": upcoming is not None and upcoming.starts_at - now <= UPCOMING,
        }


def _occ(occurrence: Occurrence) -> dict[str, datetime]:
    return {"starts_at": occurrence.starts_at, "ends_at": occurrence.ends_at}


def check(window: MaintenanceWindow) -> None:
    """Raise MaintenanceError naming the field when `window` is not usable; build its rule."""
    if not window.title or len(window.title) > 200:
        raise MaintenanceError("title", "a title of 1 to 200 characters is required")
    if not window.matchers:
        raise MaintenanceError("matchers", "at least one matcher is needed (provider, ...)")
    for name, pattern in window.matchers.items():
        if name not in MATCHER_FIELDS:
            raise MaintenanceError(
                f"matchers.{name}", f"unknown field (use {', '.join(sorted(MATCHER_FIELDS))})"
            )
        if not isinstance(pattern, str) or not pattern:
            raise MaintenanceError(f"matchers.{name}", "must be a non-empty string")
    try:
        zone(window.timezone)
    except RecurrenceError as error:
        raise MaintenanceError("timezone", str(error)) from None
    for name in ("starts_at", "ends_at"):
        value = getattr(window, name)
        if value is not None and value.tzinfo is None:
            raise MaintenanceError(name, "must carry a time zone offset (2026-12-24T22:00:00Z)")
    if window.duration_s is not None and not 1 <= window.duration_s <= MAX_DURATION_S:
        raise MaintenanceError("duration_s", f"must be 1 to {MAX_DURATION_S} seconds")
    if window.starts_at and window.ends_at and window.ends_at <= window.starts_at:
        raise MaintenanceError("ends_at", "must be after starts_at")
    if window.recurrence is None:
        if window.starts_at is None:
            raise MaintenanceError("starts_at", "a one-off window needs its start")
        if (window.ends_at is None) == (window.duration_s is None):
            raise MaintenanceError("ends_at", "give either ends_at or duration_s")
        if window.ends_at is not None and window.ends_at - window.starts_at > timedelta(
            seconds=MAX_DURATION_S
        ):
            raise MaintenanceError("ends_at", "a window lasts at most 90 days")
        return
    if window.duration_s is None:
        raise MaintenanceError("duration_s", "a recurring window needs duration_s")
    spec = dict(window.recurrence)
    try:
        rule = Recurrence.build(
            kind=spec.get("every", ""),
            timezone=window.timezone,
            at=spec.get("at"),
            weekdays=spec.get("weekdays"),
            day=spec.get("day"),
            cron=spec.get("cron"),
        )
    except RecurrenceError as error:
        where = "timezone" if error.field == "timezone" else f"recurrence.{error.field}"
        raise MaintenanceError(where, str(error)) from None
    # Frozen, but the rule is derived from the fields just checked: built once, here.
    object.__setattr__(window, "rule", rule)


def window_from_row(row: Mapping[str, Any]) -> MaintenanceWindow:
    return MaintenanceWindow(
        id=str(row["id"]),
        title=row["title"],
        message=row.get("message") or "",
        matchers=dict(row["matchers"]),
        source="api",
        timezone=row["timezone"],
        starts_at=row.get("starts_at"),
        ends_at=row.get("ends_at"),
        duration_s=row.get("duration_s"),
        recurrence=row.get("recurrence"),
        created_by=row.get("created_by") or "",
    )


class MaintenanceSet:
    """The windows every process knows: the file's, then the database's (replaced whole)."""

    def __init__(self, file_windows: Iterable[MaintenanceWindow] = ()) -> None:
        self.file_windows = list(file_windows)
        self._stored: list[MaintenanceWindow] = []

    def replace_stored(self, windows: Iterable[MaintenanceWindow]) -> None:
        self._stored = list(windows)

    def all(self) -> list[MaintenanceWindow]:
        return [*self.file_windows, *self._stored]

    def get(self, window_id: str) -> MaintenanceWindow | None:
        return next((w for w in self.all() if w.id == window_id), None)

    def matching(self, notice: AlertNotice, now: datetime) -> MaintenanceWindow | None:
        """The first window in force at `now` whose matchers hold for `notice`."""
        for window in self.all():
            if window.matches(notice, now):
                return window
        return None


class ReadOnlyWindow(Exception):
    """A file window was to be changed through the API; the message says where it is defined."""


DEFINITION_FIELDS = (
    "title",
    "message",
    "matchers",
    "timezone",
    "starts_at",
    "ends_at",
    "duration_s",
    "recurrence",
)


def definition(window: MaintenanceWindow) -> dict[str, Any]:
    """What defines `window` (what PUT sends and a row stores)."""
    return {name: getattr(window, name) for name in DEFINITION_FIELDS} | {
        "matchers": dict(window.matchers),
        "recurrence": dict(window.recurrence) if window.recurrence else None,
    }
