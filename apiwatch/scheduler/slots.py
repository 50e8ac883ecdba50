"""Planned slots and their wall-clock times: what the scheduler tells others about timing.

A `Slot` is one planned run of one job: when it was planned, when it started (or why it was
skipped) and how late it was. `current_slot` holds the slot of the job that is running, so a
job can record its own compliance (including skip reasons only it knows, such as a spent rate
limit budget).

The scheduler plans on the monotonic clock, which never jumps; people and the database need
wall-clock (UTC) times. `WallTime` maps one to the other through an anchor (a monotonic
reading and the wall time taken at the same moment): wall = anchor wall + (t - anchor
monotonic). Every wall time the scheduler reports goes through the same anchor, so
`started_at - planned_at` equals `lateness_s` exactly. When the wall clock moves away from
the anchor by more than `max_drift_s` (an NTP step, a laptop resumed from sleep, during which
the monotonic clock stood still), the anchor is retaken, so reported times follow the wall
clock again.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta

SKIP_OVERLAP = "overlap"
"""The slot came while the job's previous run was still going (or still waiting to start)."""

SKIP_MISSED = "missed"
"""The slot went by while the scheduler could not run (a stalled event loop, a suspend)."""


@dataclass(frozen=True, slots=True)
class Slot:
    """One planned run of a job. Either started (`started_at`, `lateness_s`) or `skipped`."""

    job: str
    planned_at: datetime
    started_at: datetime | None = None
    lateness_s: float | None = None
    skipped: str | None = None


current_slot: ContextVar[Slot | None] = ContextVar("apiwatch_current_slot", default=None)
"""The slot of the job running in this context; None outside scheduled runs."""


class WallTime:
    """Monotonic readings → UTC wall times, through an anchor retaken when the clocks part."""

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        wall_clock: Callable[[], datetime],
        max_drift_s: float = 1.0,
    ) -> None:
        self._clock = clock
        self._wall_clock = wall_clock
        self._max_drift_s = max_drift_s
        self._mono = clock()
        self._wall = wall_clock()

    def at(self, mono: float) -> datetime:
        """The wall time of a monotonic reading (past or future)."""
        return self._wall + timedelta(seconds=mono - self._mono)

    def resync(self) -> float:
        """Retake the anchor if the wall clock moved away from it; returns the drift seen (s).

        Cheap (one reading of each clock), so the scheduler calls it on every wake-up.
        """
        mono, wall = self._clock(), self._wall_clock()
        drift = (wall - self.at(mono)).total_seconds()
        if abs(drift) > self._max_drift_s:
            self._mono, self._wall = mono, wall
        return drift
