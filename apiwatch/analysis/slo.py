"""Service-level objectives of vendors: good and bad events, uptime, latency percentiles,
error budgets and burn rates. Pure: every figure comes from counts the caller read.

Events (the rules, stated once; storage's `check` roll-ups count exactly these):
- an event is the final attempt of one check (an at-once retry is part of the same check);
- skipped checks (budget, breaker, no key, disabled) were never sent: neither good nor bad;
- a rate-limited check (`rate_limited`) is not the vendor failing: neither good nor bad, but
  counted as `throttled` and reported beside the uptime (it usually means we asked too often);
- good: `ok` or `slow` (slow is still an answer; latency has its own objective);
- bad: every failure outcome (`Outcome.is_failure`: timeout, connection, server, client,
  auth and payload errors);
- events during a maintenance window (a silence naming only the provider or its category)
  are left out when the objective says so.

Figures over a window of length W with target T (a fraction, 0.995 for 99.5 %):
- uptime = good / (good + bad); None without events;
- error rate = bad / (good + bad); burn rate = error rate / (1 - T): 1.0 spends the budget
  exactly over the window, 14.4 spends a 30-day budget in 50 hours;
- budget: allowed bad events = (1 - T)·(good + bad); spent = bad / allowed;
  remaining = 1 - spent (negative once overspent); as time, the budget is (1 - T)·W of
  total downtime and the remaining time is remaining·(1 - T)·W.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

from apiwatch.analysis.rollups import LADDER, LatencyLadder
from apiwatch.domain import FAILURE_OUTCOMES, Outcome, Severity

# The windows every figure is shown for.
WINDOWS: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
}

GOOD_OUTCOMES = frozenset({Outcome.OK, Outcome.SLOW})
BAD_OUTCOMES = FAILURE_OUTCOMES
THROTTLED_OUTCOMES = frozenset({Outcome.RATE_LIMITED})


def classify(outcome: str, *, final: bool = True) -> str | None:
    """'good', 'bad', 'throttled' or None (not an event) for one stored attempt."""
    if not final:
        return None
    value = Outcome(outcome)
    if value in GOOD_OUTCOMES:
        return "good"
    if value in BAD_OUTCOMES:
        return "bad"
    if value in THROTTLED_OUTCOMES:
        return "throttled"
    return None


@dataclass(frozen=True, slots=True)
class Objective:
    """What a provider (or one endpoint) is held to. Fractions, not percentages."""

    target: float = 0.995
    window: timedelta = timedelta(days=30)
    latency_p95_ms: float | None = None
    sla: float | None = None  # the vendor's published availability, when it has one
    exclude_maintenance: bool = True

    def __post_init__(self) -> None:
        for name in ("target", "sla"):
            value = getattr(self, name)
            if value is not None and not 0 < value < 1:
                raise ValueError(f"{name} must be a fraction in (0, 1), got {value}")
        if self.window <= timedelta(0):
            raise ValueError("window must be positive")


@dataclass(slots=True)
class Counts:
    """Events of one series over one span, and the latency histogram of good and bad ones."""

    good: int = 0
    bad: int = 0
    throttled: int = 0
    hist: list[int] = field(default_factory=LADDER.empty)

    @property
    def events(self) -> int:
        return self.good + self.bad

    def add(self, other: Counts) -> None:
        self.good += other.good
        self.bad += other.bad
        self.throttled += other.throttled
        if self.hist or other.hist:  # counts read without histograms stay without one
            self.hist = LADDER.merge([self.hist, other.hist])

    def subtract(self, other: Counts) -> None:
        """Take out a part counted twice (a maintenance window inside counted hours)."""
        self.good = max(0, self.good - other.good)
        self.bad = max(0, self.bad - other.bad)
        self.throttled = max(0, self.throttled - other.throttled)
        self.hist = [max(0, a - b) for a, b in zip(self.hist, other.hist, strict=True)]


def uptime(counts: Counts) -> float | None:
    return None if counts.events == 0 else counts.good / counts.events


def error_rate(counts: Counts) -> float | None:
    return None if counts.events == 0 else counts.bad / counts.events


def burn_rate(counts: Counts, target: float) -> float | None:
    """How many times faster than sustainable the budget burns; None without events."""
    rate = error_rate(counts)
    return None if rate is None else rate / (1 - target)


def latency(counts: Counts, ladder: LatencyLadder = LADDER) -> dict[str, float | None]:
    """p50/p95/p99 in ms (within one bucket of the truth, see `analysis.rollups`)."""
    return {
        name: _round(ladder.percentile(counts.hist, q))
        for name, q in (("p50_ms", 0.50), ("p95_ms", 0.95), ("p99_ms", 0.99))
    }


@dataclass(frozen=True, slots=True)
class Budget:
    allowed_bad: float  # (1 - T)·events
    spent: float | None  # bad / allowed; None without events
    remaining: float | None  # 1 - spent; negative when overspent
    total_s: float  # (1 - T)·W: the downtime the window allows
    remaining_s: float | None
    burn_rate: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "allowed_bad_events": round(self.allowed_bad, 3),
            "spent": _round(self.spent, 6),
            "remaining": _round(self.remaining, 6),
            "total_s": round(self.total_s, 1),
            "remaining_s": _round(self.remaining_s, 1),
            "burn_rate": _round(self.burn_rate, 6),
        }


def budget(counts: Counts, objective: Objective) -> Budget:
    allowed = (1 - objective.target) * counts.events
    total_s = (1 - objective.target) * objective.window.total_seconds()
    if counts.events == 0:
        return Budget(allowed, None, None, total_s, None, None)
    spent = counts.bad / allowed
    remaining = 1 - spent
    return Budget(
        allowed, spent, remaining, total_s, remaining * total_s, burn_rate(counts, objective.target)
    )


def summary(counts: Counts, objective: Objective) -> dict[str, Any]:
    """Every figure of one series over one window, as the API shows it."""
    up = uptime(counts)
    lat = latency(counts)
    return {
        "good": counts.good,
        "bad": counts.bad,
        "events": counts.events,
        "throttled": counts.throttled,
        "throttled_share": _round(
            counts.throttled / (counts.events + counts.throttled)
            if counts.events + counts.throttled
            else None,
            6,
        ),
        "uptime": _round(up, 6),
        "uptime_pct": _round(None if up is None else 100 * up, 4),
        **lat,
        "meets_target": None if up is None else up >= objective.target,
        "meets_latency": (
            None
            if objective.latency_p95_ms is None or lat["p95_ms"] is None
            else lat["p95_ms"] <= objective.latency_p95_ms
        ),
        "meets_sla": None if objective.sla is None or up is None else up >= objective.sla,
    }


# -- maintenance windows ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Window:
    """A span of time [start, end)."""

    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def maintenance_windows(
    silences: Iterable[Mapping[str, Any]], *, provider: str, category: str | None
) -> list[Window]:
    """The silences that mean "this vendor is in maintenance", merged and sorted.

    A silence counts when its matchers name only `provider` and/or `category` and match this
    provider (exactly or as a glob, as the silences do); one that narrows by rule, severity
    or fingerprint mutes a noise, not the vendor's service, and excludes nothing.
    """
    spans = []
    for silence in silences:
        matchers = silence.get("matchers") or {}
        if not matchers or set(matchers) - {"provider", "category"}:
            continue
        values = {"provider": provider, "category": category}
        if all(
            values[name] is not None and fnmatchcase(str(values[name]), str(pattern))
            for name, pattern in matchers.items()
        ):
            spans.append(Window(silence["starts_at"], silence["ends_at"]))
    return merge_windows(spans)


def merge_windows(spans: Iterable[Window]) -> list[Window]:
    merged: list[Window] = []
    for span in sorted(spans, key=lambda s: s.start):
        if merged and span.start <= merged[-1].end:
            last = merged[-1]
            merged[-1] = Window(last.start, max(last.end, span.end))
        else:
            merged.append(span)
    return merged


def clip(spans: Sequence[Window], start: datetime, end: datetime) -> list[Window]:
    out = [Window(max(s.start, start), min(s.end, end)) for s in spans]
    return [s for s in out if s.start < s.end]


# -- burn-rate alerts ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BurnCondition:
    """Fire when the burn rate over both `long` and `short` is at least `factor`."""

    name: str
    long: timedelta
    short: timedelta
    factor: float
    severity: Severity


# The SRE workbook's multi-window, multi-burn-rate alerts for a 30-day budget: 2 % of the
# budget in an hour, 5 % in six hours (pages), 10 % in three days (a ticket).
DEFAULT_BURN_CONDITIONS: tuple[BurnCondition, ...] = (
    BurnCondition("page_fast", timedelta(hours=1), timedelta(minutes=5), 14.4, Severity.CRITICAL),
    BurnCondition("page_slow", timedelta(hours=6), timedelta(minutes=30), 6.0, Severity.CRITICAL),
    BurnCondition("ticket", timedelta(days=3), timedelta(hours=6), 1.0, Severity.WARNING),
)


def burn_windows(conditions: Iterable[BurnCondition]) -> list[timedelta]:
    """Every window the conditions need a burn rate for, shortest first."""
    return sorted({w for c in conditions for w in (c.long, c.short)})


def judge_burn(
    burns: Mapping[timedelta, float | None], conditions: Sequence[BurnCondition]
) -> BurnCondition | None:
    """The condition that holds, most severe (then fastest) first; None when none does.

    Both windows must burn at least `factor`: the long one proves the budget is really
    going, the short one that it is still going, so the alert resolves soon after recovery.
    """
    holding = [
        c
        for c in conditions
        if (burns.get(c.long) or 0) >= c.factor and (burns.get(c.short) or 0) >= c.factor
    ]
    if not holding:
        return None
    order = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
    return min(holding, key=lambda c: (order[c.severity], -c.factor))


def describe_span(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _round(value: float | None, digits: int = 3) -> float | None:
    if value is None or math.isnan(value):
        return None
    return round(value, digits)
