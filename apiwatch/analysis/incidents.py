"""Incidents from status changes, MTTR and MTBF. Pure.

An incident is a stretch of time during which a provider was not healthy: it starts at a
status change to `degraded` or `offline` from `online` or `unknown` (or from nothing), and it
ends at the next change to `online`. Going from degraded to offline (or back) is the same
incident, whose `worst` status is the worse one seen. A change to `unknown` (nothing probed:
breaker, budget) neither ends nor starts one: we did not see the provider recover. An
incident with no change to `online` yet is open (`end` None) and lasts until `now`.

Over a window [start, end):
- an incident counts for the window when it overlaps it; its time in the window is clipped;
- MTTR = mean duration of the incidents that ended in the window (open ones have no repair
  time yet), in seconds; None when none ended;
- MTBF = (window length - incident time in the window) / incidents that started in the
  window: the mean time the provider worked between failures; None when none started.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from apiwatch.domain import Outcome, Status

UNHEALTHY = frozenset({Status.DEGRADED, Status.OFFLINE})
_SEVERITY = {Status.DEGRADED: 1, Status.OFFLINE: 2}
# Longest names first, so "server_error" is not read as "error" of something shorter.
_OUTCOME_NAMES = sorted(
    (o for o in Outcome if o not in (Outcome.OK, Outcome.SKIPPED)), key=lambda o: -len(o.value)
)
_WORD = {o: re.compile(rf"\b{re.escape(o.value)}\b") for o in _OUTCOME_NAMES}


@dataclass(slots=True)
class Incident:
    provider: str
    start: datetime
    end: datetime | None
    worst: Status
    reason: str  # the status change's reason that opened it
    cause: str | None  # the outcome named in that reason (`server_error`, ...), if any
    alerts: list[dict[str, Any]] = field(default_factory=list)

    def duration_s(self, now: datetime) -> float:
        return ((self.end or now) - self.start).total_seconds()

    def as_dict(self, now: datetime) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "start": self.start,
            "end": self.end,
            "open": self.end is None,
            "duration_s": round(self.duration_s(now), 3),
            "worst_status": self.worst.value,
            "reason": self.reason,
            "cause": self.cause,
            "alerts": self.alerts,
        }


def cause_of(reason: str) -> str | None:
    """The outcome a status reason names ("3 consecutive failures; last: timeout (...)")."""
    for outcome in _OUTCOME_NAMES:
        if _WORD[outcome].search(reason):
            return outcome.value
    if "circuit breaker" in reason:
        return "circuit_open"
    return None


def incidents_from_changes(provider: str, changes: Iterable[Mapping[str, Any]]) -> list[Incident]:
    """Incidents of one provider from its changes (`new_status`, `reason`, `changed_at`),
    oldest first. Give the change in force at the window's start too, so an incident that
    began before the window is seen whole."""
    out: list[Incident] = []
    current: Incident | None = None
    for change in sorted(changes, key=lambda c: c["changed_at"]):
        new = Status(change["new_status"])
        at = change["changed_at"]
        if new in UNHEALTHY:
            if current is None:
                reason = str(change.get("reason") or "")
                current = Incident(provider, at, None, new, reason, cause_of(reason))
                out.append(current)
            elif _SEVERITY[new] > _SEVERITY[current.worst]:
                current.worst = new
        elif new is Status.ONLINE and current is not None:
            current.end = at
            current = None
    return out


def overlapping(incidents: Iterable[Incident], start: datetime, end: datetime) -> list[Incident]:
    return [i for i in incidents if i.start < end and (i.end is None or i.end > start)]


def attach_alerts(incidents: Sequence[Incident], alerts: Iterable[Mapping[str, Any]]) -> None:
    """Give each incident the alerts of its provider fired while it lasted."""
    by_provider: dict[str, list[Mapping[str, Any]]] = {}
    for alert in alerts:
        by_provider.setdefault(str(alert.get("provider")), []).append(alert)
    for incident in incidents:
        for alert in by_provider.get(incident.provider, []):
            fired = alert["fired_at"]
            if incident.start <= fired and (incident.end is None or fired <= incident.end):
                incident.alerts.append(
                    {
                        "id": alert.get("id"),
                        "rule": alert.get("rule"),
                        "severity": alert.get("severity"),
                        "fired_at": fired,
                        "resolved_at": alert.get("resolved_at"),
                    }
                )


@dataclass(frozen=True, slots=True)
class Reliability:
    incidents: int  # overlapping the window
    started: int  # started in the window
    ended: int  # ended in the window
    downtime_s: float  # incident time inside the window
    mttr_s: float | None
    mtbf_s: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "incidents": self.incidents,
            "incidents_started": self.started,
            "incidents_ended": self.ended,
            "incident_time_s": round(self.downtime_s, 3),
            "mttr_s": None if self.mttr_s is None else round(self.mttr_s, 3),
            "mtbf_s": None if self.mtbf_s is None else round(self.mtbf_s, 3),
        }


def reliability(
    incidents: Iterable[Incident], *, start: datetime, end: datetime, now: datetime
) -> Reliability:
    """MTTR and MTBF over [start, end) (see the module docstring)."""
    stop = min(end, now)  # a window still running is judged on what has passed
    inside = overlapping(incidents, start, stop)
    downtime = sum(
        max(0.0, (min(i.end or now, stop) - max(i.start, start)).total_seconds()) for i in inside
    )
    ended = [i for i in inside if i.end is not None and start <= i.end < end]
    started = [i for i in inside if start <= i.start < end]
    mttr = sum(i.duration_s(now) for i in ended) / len(ended) if ended else None
    span = (stop - start).total_seconds()
    mtbf = (span - downtime) / len(started) if started else None
    return Reliability(len(inside), len(started), len(ended), downtime, mttr, mtbf)
