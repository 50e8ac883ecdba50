"""Fixtures for budget tests: an injected clock, and each store over a real backend.

Redis comes from the shared fixtures in tests/conftest.py: each test gets a key prefix of its
own and its keys are deleted afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from apiwatch.budget.stores import BudgetStore, MemoryBudgetStore, RedisBudgetStore
from tests.conftest import connect_redis, delete_prefix, new_prefix

# 2026-03-14 12:00:00 UTC: a round minute, hour and day, mid-month.
T0 = datetime(2026, 3, 14, 12, 0, 0, tzinfo=UTC).timestamp()


class FakeClock:
    """Unix seconds that move only when a test moves them."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def set(self, moment: datetime) -> None:
        self.now = moment.timestamp()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[BudgetStore]:
    """Each store, so one behaviour suite covers both."""
    if request.param == "memory":
        yield MemoryBudgetStore()
        return
    client = await connect_redis()
    prefix = new_prefix()
    try:
        yield RedisBudgetStore(client, prefix=prefix)
    finally:
        await delete_prefix(client, prefix)
        await client.aclose()
