"""State that several apiwatch processes share: breaker and key-pool snapshots per provider.

In one process nothing needs sharing (`LocalState` does nothing); with Redis each provider's
snapshot lives under one key, read before a probe and written after it, stamped with when it
was saved; a process adopts only a snapshot newer than the last it saved or adopted. Two
processes saving at once may still lose one failure count (last writer wins), which delays a
breaker by a probe; budgets are never affected, they are counted atomically by their store.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Protocol

from apiwatch.budget.stores.fallback import unavailable
from apiwatch.dependencies import Dependency

if TYPE_CHECKING:
    from redis.asyncio import Redis


class SharedState(Protocol):
    async def load(self, provider: str) -> dict[str, Any]: ...

    async def save(self, provider: str, **parts: Any) -> None: ...


class LocalState:
    """One process: its own breaker and pools are the whole truth."""

    async def load(self, provider: str) -> dict[str, Any]:
        return {}

    async def save(self, provider: str, **parts: Any) -> None:
        return None


class RedisState:
    def __init__(self, redis_client: Redis, prefix: str = "apiwatch:state:") -> None:
        self._redis = redis_client
        self._prefix = prefix

    async def load(self, provider: str) -> dict[str, Any]:
        """{"breaker": {...}, "keys": {...}} as last saved by any process (parts may be absent)."""
        names = ("breaker", "keys")
        values = await self._redis.mget([f"{self._prefix}{part}:{provider}" for part in names])
        out: dict[str, Any] = {}
        for name, raw in zip(names, values, strict=True):
            if raw:
                try:
                    out[name] = json.loads(raw)
                except ValueError:
                    continue
        return out

    async def save(self, provider: str, **parts: Any) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for name, value in parts.items():
                pipe.set(f"{self._prefix}{name}:{provider}", json.dumps(value))
            await pipe.execute()


class FallbackState:
    """Shared state that may be away: while it is, this process's own breaker and pools are
    the truth (as with `LocalState`), and the next save after it is back shares them again."""

    def __init__(self, shared: SharedState, dependency: Dependency) -> None:
        self.shared = shared
        self.dependency = dependency

    async def load(self, provider: str) -> dict[str, Any]:
        if not self.dependency.should_try():
            return {}
        try:
            value = await self.shared.load(provider)
        except unavailable() as error:
            self.dependency.failed(error)
            return {}
        self.dependency.succeeded()
        return value

    async def save(self, provider: str, **parts: Any) -> None:
        if not self.dependency.should_try():
            return
        try:
            await self.shared.save(provider, **parts)
        except unavailable() as error:
            self.dependency.failed(error)
        else:
            self.dependency.succeeded()
