"""Schedule compliance: whether a planned run started on time. Pure.

A run is on time when it started within the tolerance of its planned time: a fixed number
of seconds or a fraction of the interval, whichever is smaller (a 1-minute schedule that
starts 5 s late has lost a twelfth of its period; a daily one has not).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

Judgement = Literal["on_time", "late"]


def tolerance_s(interval_s: float, *, max_s: float = 5.0, fraction: float = 0.10) -> float:
    return min(max_s, fraction * interval_s)


def judge_start(
    planned_at: datetime, started_at: datetime, *, interval_s: float, tolerance: float
) -> tuple[Judgement, float]:
    """(`on_time` or `late`, lateness in ms). Starting early counts as on time, lateness 0."""
    lateness_ms = max(0.0, (started_at - planned_at).total_seconds() * 1000)
    return ("on_time" if lateness_ms <= tolerance * 1000 else "late"), lateness_ms


def compliance_pct(on_time: int, planned: int) -> float | None:
    """Share of planned runs that started on time; None when nothing was planned."""
    return None if planned == 0 else round(100.0 * on_time / planned, 2)
