"""A shared budget store that keeps working when its server (Redis) does not.

Every call goes to the shared store while it answers. When it fails (refused, reset, timed
out), the call is answered by an in-process store instead and the shared store is skipped
for the dependency's `retry_s`; the next call after that tries it again, so recovery is
automatic. While the shared state is away, each window may spend only a conservative local
share of its limit in this process (`share`, e.g. 0.25 of the day's quota, at least 1): the
other processes and what was already spent this period are unknown, so the local count
starts from nothing and a small share bounds what an outage can overspend. Counts made
locally are not copied into Redis afterwards; the local share is the price of an outage.
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from apiwatch.budget.stores.base import AcquireResult, BudgetStore, Slot, WindowState
from apiwatch.budget.stores.memory import MemoryBudgetStore
from apiwatch.dependencies import Dependency

T = TypeVar("T")


@functools.cache
def unavailable() -> tuple[type[BaseException], ...]:
    """What "the shared store is unavailable" looks like from redis-py: its own errors (which
    include its connection and timeout errors), and the OS- and asyncio-level ones it lets by.

    Asked for in `except` clauses, so only once a shared store has raised, when redis-py is
    loaded anyway: a process without Redis never imports it (about 8 MB resident)."""
    from redis.exceptions import RedisError

    return (RedisError, OSError, asyncio.TimeoutError, ConnectionError)


class FallbackBudgetStore:
    def __init__(self, shared: BudgetStore, dependency: Dependency, *, share: float) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], got {share}")
        self.shared = shared
        self.local = MemoryBudgetStore()
        self.dependency = dependency
        self.share = share

    def _local_slots(self, slots: Sequence[Slot]) -> list[Slot]:
        return [
            Slot(
                s.window, s.start, s.end, max(1, math.floor(s.limit * self.share)) if s.limit else 0
            )
            for s in slots
        ]

    async def _either(
        self, shared: Callable[[], Awaitable[T]], local: Callable[[], Awaitable[T]]
    ) -> T:
        if self.dependency.should_try():
            try:
                value = await shared()
            except unavailable() as error:
                self.dependency.failed(error)
            else:
                self.dependency.succeeded()
                return value
        else:
            self.dependency.served_locally()
        return await local()

    async def acquire(
        self, provider: str, slots: Sequence[Slot], *, weight: int, now: float, warn_at: float
    ) -> AcquireResult:
        return await self._either(
            lambda: self.shared.acquire(provider, slots, weight=weight, now=now, warn_at=warn_at),
            lambda: self.local.acquire(
                provider, self._local_slots(slots), weight=weight, now=now, warn_at=warn_at
            ),
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
        # A provider's own figure is the best there is; locally it is kept as it is, so a
        # provider reporting a full window stops this process at once.
        return await self._either(
            lambda: self.shared.report(
                provider, slot, used=used, limit=limit, reset_at=reset_at, now=now
            ),
            lambda: self.local.report(
                provider, slot, used=used, limit=limit, reset_at=reset_at, now=now
            ),
        )

    async def block_until(self, provider: str, until: float, *, now: float) -> float:
        # A Retry-After is always kept locally too: it must hold through an outage.
        await self.local.block_until(provider, until, now=now)
        return await self._either(
            lambda: self.shared.block_until(provider, until, now=now),
            lambda: self.local.block_until(provider, until, now=now),
        )

    async def blocked_until(self, provider: str, *, now: float) -> float | None:
        return await self._either(
            lambda: self.shared.blocked_until(provider, now=now),
            lambda: self.local.blocked_until(provider, now=now),
        )

    async def read(self, provider: str, slots: Sequence[Slot]) -> list[WindowState | None]:
        return await self._either(
            lambda: self.shared.read(provider, slots),
            lambda: self.local.read(provider, self._local_slots(slots)),
        )
