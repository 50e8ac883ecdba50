"""Wall times of monotonic readings: one anchor, retaken only when the wall clock steps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from apiwatch.scheduler.slots import WallTime

START = datetime(2026, 1, 1, tzinfo=UTC)


class SteppableClocks:
    def __init__(self) -> None:
        self.mono = 1000.0
        self.wall = START

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += timedelta(seconds=seconds)


def test_wall_time_of_a_reading_is_the_anchor_plus_the_monotonic_offset() -> None:
    clocks = SteppableClocks()
    wall = WallTime(clock=lambda: clocks.mono, wall_clock=lambda: clocks.wall)
    assert wall.at(1000.0) == START
    assert wall.at(1030.5) == START + timedelta(seconds=30.5)
    assert wall.at(990.0) == START - timedelta(seconds=10)


def test_small_drift_keeps_the_anchor_so_planned_times_stay_on_their_grid() -> None:
    clocks = SteppableClocks()
    wall = WallTime(clock=lambda: clocks.mono, wall_clock=lambda: clocks.wall)
    clocks.advance(10)
    clocks.wall += timedelta(milliseconds=300)  # NTP slewing, under the threshold
    assert wall.resync() == 0.3
    assert wall.at(1010.0) == START + timedelta(seconds=10)


def test_a_wall_clock_step_retakes_the_anchor() -> None:
    clocks = SteppableClocks()
    wall = WallTime(clock=lambda: clocks.mono, wall_clock=lambda: clocks.wall)
    clocks.advance(10)
    clocks.wall += timedelta(hours=1)  # resumed from a suspend: monotonic stood still
    assert wall.resync() == 3600.0
    assert wall.at(clocks.mono) == clocks.wall
    assert wall.at(clocks.mono + 5) == clocks.wall + timedelta(seconds=5)
