"""Persisting circuit breakers as they change: one save in flight at a time, of the
breakers that changed since the last one.

A transition asks for a save; transitions that arrive while a save runs are gathered into
the next one. Saving the whole snapshot per transition (one transaction per transition,
each on its own pooled connection) made the saves queue for SQLite's write lock when many
breakers moved at once, and a save cancelled at shutdown in the middle of its transaction
could leave that lock held. So a running save is never cancelled: `close` waits for it,
then writes every breaker once more.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger("apiwatch.runtime")


class BreakerSaves:
    def __init__(self, save: Callable[[set[str] | None], Awaitable[None]]) -> None:
        # `save(None)` stores every breaker; `save({...})` only those providers'.
        self._save = save
        self._dirty: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._failures = 0
        self._failure_logged_at = float("-inf")

    def changed(self, provider: str) -> None:
        """A breaker moved: save it soon (with any others that move meanwhile)."""
        self._dirty.add(provider)
        if self._task is None and not self._closed:
            self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        try:
            while self._dirty and not self._closed:
                providers, self._dirty = self._dirty, set()
                try:
                    await self._save(providers)
                except Exception as error:  # locked or away: kept for the next save
                    self._dirty |= providers
                    self._failed(error)
                    return
        finally:
            self._task = None

    def _failed(self, error: Exception) -> None:
        # Once, then once a minute with how many more (a database outage fails them all).
        self._failures += 1
        now = time.monotonic()
        if now - self._failure_logged_at >= 60.0:
            self._failure_logged_at = now
            log.warning("breakers_not_saved", failures=self._failures, error=repr(error)[:300])
            self._failures = 0

    async def flush(self) -> None:
        """Wait for the save in flight, if any."""
        task = self._task
        if task is not None:
            await asyncio.shield(task)

    async def close(self) -> None:
        """At shutdown: no new saves; the one in flight finishes; then every breaker is
        written once (raising what the database raises, for the caller to report)."""
        self._closed = True
        await self.flush()
        self._dirty.clear()
        await self._save(None)
