"""Injected time for scheduler tests: a monotonic clock that can be shifted forward (standing
for a stall without blocking the loop) and a wall clock that follows it exactly."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

BASE = datetime(2026, 1, 1, tzinfo=UTC)


class Clocks:
    def __init__(self) -> None:
        self.offset = 0.0

    def mono(self) -> float:
        return time.monotonic() + self.offset

    def wall(self) -> datetime:
        return BASE + timedelta(seconds=self.mono())

    def shift(self, seconds: float) -> None:
        self.offset += seconds
