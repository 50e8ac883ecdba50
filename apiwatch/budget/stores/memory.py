"""The in-process budget store: the default when apiwatch runs as one process.

Each method runs without awaiting anything, so on one event loop check-then-increment is
atomic without a lock. Only the current period of each window is kept: a new period
replaces the old one, so memory stays at (providers x tier scopes x windows) entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from apiwatch.budget.stores.base import AcquireResult, Crossing, Slot, WindowState


@dataclass(slots=True)
class _PeriodState:
    start: float
    used: int = 0
    limit: int | None = None
    reported: bool = False
    reset_at: float | None = None
    warned: bool = False


class MemoryBudgetStore:
    """Budget counters in a dict; not shared between processes."""

    def __init__(self) -> None:
        self._periods: dict[tuple[str, str, str], _PeriodState] = {}
        self._blocked: dict[str, float] = {}

    def _get(self, provider: str, slot: Slot) -> _PeriodState | None:
        state = self._periods.get((provider, slot.scope, slot.window))
        if state is not None and state.start == slot.start:
            return state
        return None

    def _get_or_create(self, provider: str, slot: Slot) -> _PeriodState:
        state = self._get(provider, slot)
        if state is None:
            state = _PeriodState(start=slot.start)
            self._periods[(provider, slot.scope, slot.window)] = state
        return state

    async def acquire(
        self,
        provider: str,
        slots: Sequence[Slot],
        *,
        weight: int,
        now: float,
        warn_at: float,
    ) -> AcquireResult:
        until = self._live_block(provider, now)
        if until is not None:
            return AcquireResult(allowed=False, blocked_until=until)

        states = [self._get(provider, slot) for slot in slots]
        limits = [
            state.limit if state is not None and state.limit is not None else slot.limit
            for slot, state in zip(slots, states, strict=True)
        ]
        refused: Slot | None = None
        for slot, state, limit in zip(slots, states, limits, strict=True):
            used = state.used if state is not None else 0
            full = limit > 0 and used + weight > limit
            if full and (refused is None or slot.end >= refused.end):
                refused = slot  # the full window that ends last: the longest wait
        refused_by = None if refused is None else refused.window

        if refused_by is None:
            for index, (slot, limit) in enumerate(zip(slots, limits, strict=True)):
                if limit > 0:
                    state = states[index] or self._get_or_create(provider, slot)
                    state.used += weight
                    states[index] = state

        crossings: list[Crossing] = []
        for slot, state, limit in zip(slots, states, limits, strict=True):
            if limit <= 0 or state is None or state.warned:
                continue
            if state.used >= warn_at * limit:
                state.warned = True
                crossings.append(Crossing(slot.window, state.used, limit, slot.scope))
        return AcquireResult(
            allowed=refused is None,
            refused_by=refused_by,
            refused_scope="" if refused is None else refused.scope,
            crossings=tuple(crossings),
        )

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
        state = self._get_or_create(provider, slot)
        state.used = max(state.used, used)
        state.reported = True
        if limit is not None:
            state.limit = limit
        if reset_at is not None:
            state.reset_at = reset_at
        return state.used

    def restore(self, provider: str, slot: Slot, used: int) -> None:
        """Start this period at `used` (a restart's stored figure); counted, not reported."""
        state = self._get_or_create(provider, slot)
        state.used = max(state.used, used)

    async def block_until(self, provider: str, until: float, *, now: float) -> float:
        current = self._blocked.get(provider)
        if current is None or current <= now or until > current:
            current = until
            self._blocked[provider] = current
        return current

    async def blocked_until(self, provider: str, *, now: float) -> float | None:
        return self._live_block(provider, now)

    def _live_block(self, provider: str, now: float) -> float | None:
        # Synchronous on purpose: acquire must not yield between the check and the count.
        until = self._blocked.get(provider)
        if until is None:
            return None
        if until <= now:
            del self._blocked[provider]
            return None
        return until

    async def read(self, provider: str, slots: Sequence[Slot]) -> list[WindowState | None]:
        result: list[WindowState | None] = []
        for slot in slots:
            state = self._get(provider, slot)
            result.append(
                None
                if state is None
                else WindowState(state.used, state.limit, state.reported, state.reset_at)
            )
        return result
