"""What the budget gate answers and shows: its decision for one request, the warning and
block events it raises, and one window's usage with its forecast, as the API, the charts,
the feed and the metrics read them.

The gate (gate.py) decides; this module holds the value types and the arithmetic that turns
a store's window state into what a reader sees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from apiwatch.budget.stores.base import Slot, WindowState
from apiwatch.budget.tiers import Tier, tier_of
from apiwatch.budget.windows import to_datetime


@dataclass(frozen=True, slots=True)
class BudgetWarning:
    """A window passed the warning threshold (80 %); sent once per window period."""

    provider: str
    window: str
    used: int
    limit: int
    percent: float
    reset_at: datetime
    tier: Tier = "ip"
    scope: str = ""  # the endpoint or key the tier is counted for


@dataclass(frozen=True, slots=True)
class BudgetBlocked:
    """A full window refused a request; sent once per window period (per process), never
    for windows shorter than a minute (a second, OKX's 2 s), which bursts fill routinely."""

    provider: str
    window: str
    used: int
    limit: int
    reset_at: datetime
    tier: Tier = "ip"
    scope: str = ""  # the endpoint or key the tier is counted for


@dataclass(frozen=True, slots=True)
class Decision:
    """The gate's answer. When refused, `window` names the full window, or is None when the
    provider asked us to wait (`Retry-After`); `reset_at` is when to ask again."""

    allowed: bool
    reason: str | None = None
    window: str | None = None
    reset_at: datetime | None = None
    warnings: list[BudgetWarning] = field(default_factory=list)
    tier: Tier = "ip"  # the tier of the full window
    scope: str = ""  # its endpoint or key
    # Set on the first refusal by a full window in its period.
    blocked: BudgetBlocked | None = None


@dataclass(frozen=True, slots=True)
class WindowUsage:
    """One window of one provider as the API and charts show it."""

    provider: str
    window: str
    limit: int
    used: int
    remaining: int
    reset_at: datetime
    percent: float
    source: Literal["counted", "reported"]
    forecast_exhausted_at: datetime | None
    tier: Tier = "ip"
    scope: str = ""  # the endpoint or key the tier is counted for; "" for the ip tier


def forecast_exhaustion(
    *, used: int, limit: int, start: float, end: float, now: float
) -> float | None:
    """When the window fills at its pace so far (used / elapsed), or None if not before `end`.

    A window already full is exhausted `now`.
    """
    if used >= limit:
        return now
    elapsed = now - start
    if used <= 0 or elapsed <= 0:
        return None
    at = now + (limit - used) * elapsed / used
    return at if at < end else None


def window_usage(
    provider: str, slot: Slot, state: WindowState | None, now: float
) -> WindowUsage | None:
    """What one window of one tier shows: the reported limit over the catalogue's, the later
    of our period's end and the provider's reset, and the forecast; None without a limit."""
    limit = state.limit if state is not None and state.limit is not None else slot.limit
    if not limit:
        return None
    used = state.used if state is not None else 0
    reset = max(slot.end, state.reset_at or 0.0) if state is not None else slot.end
    forecast = forecast_exhaustion(used=used, limit=limit, start=slot.start, end=slot.end, now=now)
    return WindowUsage(
        provider=provider,
        window=slot.window,
        limit=limit,
        used=used,
        remaining=max(0, limit - used),
        reset_at=to_datetime(reset),
        percent=100.0 * used / limit,
        source="reported" if state is not None and state.reported else "counted",
        forecast_exhausted_at=None if forecast is None else to_datetime(forecast),
        tier=tier_of(slot.scope)[0],
        scope=tier_of(slot.scope)[1],
    )
