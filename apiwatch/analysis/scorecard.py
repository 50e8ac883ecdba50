"""The vendor scorecard: every provider ranked by how it kept its objective and its SLA, and
the "poor SLA" flag. Pure.

Ranking, best first, compares in order (the first difference decides):
1. missed its availability objective in the window (worse);
2. share of the error budget spent (more is worse): how far below its objective it fell;
3. flagged poor SLA (worse);
4. incidents in the window (more is worse);
5. uptime (lower is worse), then p95 latency (higher is worse), then the provider id.
Providers without a single event in the window cannot be judged: they get no rank and are
listed after the ranked ones.

Poor SLA flag, with the reason(s):
- the vendor publishes an SLA and its uptime in the window is below it; or
- it missed its objective (availability, or p95 latency when one is set) in each of the last
  `poor_after` whole windows (the current one included).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class ScoreRow:
    provider: str
    name: str
    window: str
    events: int
    uptime: float | None
    target: float
    sla: float | None
    p95_ms: float | None
    latency_p95_ms: float | None  # the latency objective, if any
    budget_spent: float | None
    budget_remaining_s: float | None
    incidents: int
    mttr_s: float | None
    mtbf_s: float | None
    throttled: int
    throttled_share: float | None
    stale: int  # data-freshness alerts in the window
    divergent: int  # divergence alerts in the window: prices and order books (cross_venue)
    # Per past whole window, newest first (the current one first): objective missed?
    missed_history: list[bool | None] = field(default_factory=list)
    poor_sla: bool = False
    reasons: list[str] = field(default_factory=list)
    rank: int | None = None
    periods: str = ""  # what the windows are called in reasons: "30d windows", "months"

    @property
    def missed_target(self) -> bool:
        return self.uptime is not None and self.uptime < self.target

    def as_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "provider": self.provider,
            "name": self.name,
            "window": self.window,
            "events": self.events,
            "uptime_pct": _pct(self.uptime),
            "target_pct": _pct(self.target),
            "sla_pct": _pct(self.sla),
            "p95_ms": self.p95_ms,
            "latency_objective_p95_ms": self.latency_p95_ms,
            "budget_spent_pct": _pct(self.budget_spent),
            "budget_remaining_s": self.budget_remaining_s,
            "incidents": self.incidents,
            "mttr_s": self.mttr_s,
            "mtbf_s": self.mtbf_s,
            "throttled": self.throttled,
            "throttled_pct": _pct(self.throttled_share),
            "stale_alerts": self.stale,
            "divergence_alerts": self.divergent,
            "missed_windows": sum(1 for m in self.missed_history if m),
            "poor_sla": self.poor_sla,
            "reasons": list(self.reasons),
        }


def objective_missed(
    uptime: float | None, target: float, p95_ms: float | None, latency_p95_ms: float | None
) -> bool | None:
    """Whether one window missed its objective; None when it had no events."""
    if uptime is None:
        return None
    slow = latency_p95_ms is not None and p95_ms is not None and p95_ms > latency_p95_ms
    return uptime < target or slow


def flag_poor_sla(row: ScoreRow, *, poor_after: int) -> None:
    """Set `poor_sla` and `reasons` (see the module docstring)."""
    reasons = []
    if row.sla is not None and row.uptime is not None and row.uptime < row.sla:
        reasons.append(
            f"uptime {100 * row.uptime:.3f}% over {row.window} is below its published SLA "
            f"of {100 * row.sla:g}%"
        )
    recent = row.missed_history[:poor_after]
    if poor_after > 0 and len(recent) == poor_after and all(recent):
        periods = row.periods or f"{row.window} windows"
        reasons.append(
            f"missed its objective ({100 * row.target:g}%"
            + (f", p95 ≤ {row.latency_p95_ms:g} ms" if row.latency_p95_ms else "")
            + f") in each of the last {poor_after} {periods}"
        )
    row.poor_sla = bool(reasons)
    row.reasons = reasons


def rank(rows: Iterable[ScoreRow]) -> list[ScoreRow]:
    """Ranked rows, best first, then the unjudged ones (rank None), by provider."""
    rows = list(rows)
    judged = [r for r in rows if r.events > 0]
    unjudged = sorted((r for r in rows if r.events == 0), key=lambda r: r.provider)
    judged.sort(
        key=lambda r: (
            r.missed_target,
            r.budget_spent or 0.0,
            r.poor_sla,
            r.incidents,
            -(r.uptime if r.uptime is not None else 0.0),
            r.p95_ms or 0.0,
            r.provider,
        )
    )
    for position, row in enumerate(judged, start=1):
        row.rank = position
    for row in unjudged:
        row.rank = None
    return [*judged, *unjudged]


CSV_COLUMNS: Sequence[str] = (
    "rank", "provider", "name", "window", "events", "uptime_pct", "target_pct", "sla_pct",
    "p95_ms", "latency_objective_p95_ms", "budget_spent_pct", "budget_remaining_s",
    "incidents", "mttr_s", "mtbf_s", "throttled", "throttled_pct", "stale_alerts",
    "divergence_alerts", "missed_windows", "poor_sla", "reasons",
)  # fmt: skip


def _pct(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 4)
