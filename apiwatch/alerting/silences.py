"""Silences: mute alerts that match every matcher between two times (maintenance windows).

A matcher names a field of the alert (`rule`, `provider`, `severity`, `category`, or
`fingerprint`) and a value that is matched exactly or as a glob (`coin*`, `rate_limit_?`).
A field the alert lacks (an inbound alert has no provider) matches only `*`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatchcase

from apiwatch.alerting.model import AlertNotice

MATCHER_FIELDS = frozenset({"rule", "provider", "severity", "category", "fingerprint"})


class SilenceError(ValueError):
    """A silence that cannot be created; the message says which field and why."""


@dataclass(frozen=True)
class Silence:
    id: int | None
    matchers: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str = ""
    created_at: datetime | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.matchers:
            raise SilenceError("matchers: at least one matcher is needed (rule, provider, ...)")
        unknown = sorted(set(self.matchers) - MATCHER_FIELDS)
        if unknown:
            allowed = ", ".join(sorted(MATCHER_FIELDS))
            raise SilenceError(f"matchers: unknown field {unknown[0]!r} (use {allowed})")
        for name, pattern in self.matchers.items():
            if not isinstance(pattern, str) or not pattern:
                raise SilenceError(f"matchers.{name}: must be a non-empty string")
        if self.starts_at.tzinfo is None or self.ends_at.tzinfo is None:
            raise SilenceError("starts_at/ends_at: must carry a time zone")
        if self.ends_at <= self.starts_at:
            raise SilenceError("ends_at: must be after starts_at")
        if not self.created_by:
            raise SilenceError("created_by: who created the silence is required")

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "matchers": dict(self.matchers),
            "starts_at": self.starts_at.isoformat(),
            "ends_at": self.ends_at.isoformat(),
            "created_by": self.created_by,
            "comment": self.comment,
        }


def _value(notice: AlertNotice, name: str) -> str | None:
    if name == "severity":
        return notice.severity.value
    value = getattr(notice, name)
    return None if value is None else str(value)


def matches(silence: Silence, notice: AlertNotice, now: datetime) -> bool:
    """Whether `silence` is in force at `now` and every matcher holds for `notice`."""
    return silence.active(now) and matchers_hold(silence.matchers, notice)


def matchers_hold(matchers: Mapping[str, str], notice: AlertNotice) -> bool:
    """Whether every matcher holds for `notice` (silences and maintenance windows)."""
    for name, pattern in matchers.items():
        value = _value(notice, name)
        if value is None:
            if pattern != "*":
                return False
        elif not fnmatchcase(value, pattern):
            return False
    return True


class SilenceSet:
    """The silences in force or planned; ids are given out here when the caller has none."""

    def __init__(self, silences: Iterable[Silence] = ()) -> None:
        self._silences: dict[int, Silence] = {}
        self._next_id = 1
        for silence in silences:
            self.add(silence)

    def add(self, silence: Silence) -> Silence:
        if silence.id is None:
            silence = dataclasses.replace(silence, id=self._next_id)
        assert silence.id is not None
        self._next_id = max(self._next_id, silence.id + 1)
        self._silences[silence.id] = silence
        return silence

    def remove(self, silence_id: int) -> bool:
        return self._silences.pop(silence_id, None) is not None

    def get(self, silence_id: int) -> Silence | None:
        return self._silences.get(silence_id)

    def all(self) -> list[Silence]:
        return sorted(self._silences.values(), key=lambda s: (s.starts_at, s.id or 0))

    def active(self, now: datetime) -> list[Silence]:
        return [s for s in self.all() if s.active(now)]

    def matching(self, notice: AlertNotice, now: datetime) -> Silence | None:
        """The first silence in force that mutes `notice`, if any."""
        for silence in self._silences.values():
            if matches(silence, notice, now):
                return silence
        return None

    def prune(self, now: datetime) -> int:
        """Forget silences that have ended; returns how many."""
        ended = [sid for sid, s in self._silences.items() if s.ends_at <= now]
        for sid in ended:
            del self._silences[sid]
        return len(ended)
