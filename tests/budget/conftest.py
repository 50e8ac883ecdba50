"""Fixtures for budget tests: an injected clock, and each store over a real backend.

Redis is the server at APIWATCH_TEST_REDIS_URL (default redis://127.0.0.1:6379/0). Each
test gets a key prefix of its own and its keys are deleted afterwards. When Redis is
unreachable the Redis cases are skipped, except under CI=true, where that is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from apiwatch.budget.stores import BudgetStore, MemoryBudgetStore, RedisBudgetStore

REDIS_URL = os.environ.get("APIWATCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

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


def _unavailable(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: Redis tests must run)")
    pytest.skip(message)


async def connect_redis() -> Any:
    """A `redis.asyncio.Redis` on the test server, or skip (fail under CI) with the reason."""
    try:
        from redis.asyncio import Redis
    except ImportError as error:
        _unavailable(f"the redis package is not installed: {error}")
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=5)
    try:
        await client.ping()
    except Exception as error:
        await client.aclose()
        _unavailable(f"Redis at {REDIS_URL} is unreachable: {type(error).__name__}: {error}")
    return client


def new_prefix() -> str:
    return f"apiwatch:test:budget:{uuid.uuid4().hex}:"


async def delete_prefix(client: Any, prefix: str) -> None:
    keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
    if keys:
        await client.delete(*keys)


@pytest.fixture
async def redis_client() -> AsyncIterator[Any]:
    client = await connect_redis()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def redis_prefix(redis_client: Any) -> AsyncIterator[str]:
    prefix = new_prefix()
    try:
        yield prefix
    finally:
        await delete_prefix(redis_client, prefix)


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
