"""A clock the tests set and move by hand (epoch seconds)."""

from __future__ import annotations


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# 2026-11-23 12:00:10 UTC: ten seconds into a minute, an hour and (12 h into) a day.
NOON = 1_795_435_210.0
