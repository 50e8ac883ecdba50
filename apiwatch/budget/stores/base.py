"""The interface every budget store implements, and the values it exchanges with the gate.

A store keeps, per provider, tier scope and window period, the used figure (counted or reported), a
reported limit and reset time if the provider gave them, and whether the 80 % warning of
that period has gone out; plus, per provider, a "blocked until" moment (`Retry-After`).
It decides nothing about clocks or catalogues: the gate passes the periods, the limits and
`now`, so the same store serves real time and tests' injected time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Slot:
    """One window's current period for one provider, with the catalogue's limit (0: none).

    The gate passes every window, configured or not, because a provider may report a limit
    for a window the catalogue does not name (Bybit's per-second limit); such a window is
    enforced for the period the report covers. `scope` names the budget tier the window
    belongs to: "" for the provider-wide (IP) tier, `endpoint:<name>` or `key:<env name>`.
    One acquire passes the slots of every tier, so a request is counted in all or none.
    """

    window: str
    start: float
    end: float
    limit: int
    scope: str = ""


@dataclass(frozen=True, slots=True)
class Crossing:
    """A window that has just passed the warning threshold in its current period."""

    window: str
    used: int
    limit: int
    scope: str = ""


@dataclass(frozen=True, slots=True)
class AcquireResult:
    allowed: bool
    refused_by: str | None = None  # the window that is full; None when allowed or blocked
    refused_scope: str = ""  # the tier scope of that window
    blocked_until: float | None = None  # set when a Retry-After block refused the request
    crossings: tuple[Crossing, ...] = ()


@dataclass(frozen=True, slots=True)
class WindowState:
    """What a store holds for one window period."""

    used: int
    limit: int | None  # reported by the provider; overrides the catalogue for this period
    reported: bool
    reset_at: float | None  # reported by the provider


class BudgetStore(Protocol):
    async def acquire(
        self,
        provider: str,
        slots: Sequence[Slot],
        *,
        weight: int,
        now: float,
        warn_at: float,
    ) -> AcquireResult:
        """Atomically: refuse if blocked or if `weight` does not fit in every window with a
        limit; otherwise add `weight` to each of them. Either way, return the windows whose
        used figure is at or above `warn_at` of their limit for the first time this period.
        """
        ...

    async def report(
        self,
        provider: str,
        slot: Slot,
        *,
        used: int,
        limit: int | None,
        reset_at: float | None,
        now: float,
    ) -> int:
        """Record the provider's own figure for this period; return the used figure kept."""
        ...

    async def block_until(self, provider: str, until: float, *, now: float) -> float:
        """Refuse the provider until `until` (the later of this and any existing block)."""
        ...

    async def blocked_until(self, provider: str, *, now: float) -> float | None: ...

    async def read(self, provider: str, slots: Sequence[Slot]) -> list[WindowState | None]:
        """The state of each slot's period, None where nothing was counted or reported."""
        ...
