"""Alert writes that wait for the database: kept in order and retried until it answers.

An alert decided while the database is away (its own `apiwatch_dependency_down` alert first
of all) is still sent, because the policy holds it in memory; only its row could not be
written. Such a write is queued here instead of being lost, and every later write queues
behind it, so a firing row is always inserted before its resolve updates it. The alert
manager drains the queue on each turn of its flush loop. The queue is bounded: past
`limit` writes the oldest is dropped and counted, and that is logged.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

import structlog
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, ProgrammingError

log = structlog.get_logger("apiwatch.alerting")

Write = Callable[[], Awaitable[object]]


def database_away(error: BaseException) -> bool:
    """An error that a later try may not meet: the server gone, a lock, a timeout. A write
    the database refused on its merits (a constraint, bad SQL) would fail again forever."""
    if isinstance(error, IntegrityError | ProgrammingError | DataError):
        return False
    return isinstance(error, DBAPIError | OSError | TimeoutError)


class PendingWrites:
    def __init__(self, *, limit: int = 10_000, log_every_s: float = 60.0) -> None:
        self._queue: deque[tuple[str, Write]] = deque()
        self._limit = limit
        self._log_every_s = log_every_s
        self._logged_at = float("-inf")
        # The consumer, the flush loop and the senders all write: one at a time, in order.
        self._lock = asyncio.Lock()
        self.dropped = 0
        # Writes under way. Each runs in a task of its own that a cancelled caller does not
        # cut off: a write cancelled inside its transaction could leave SQLite's write lock
        # held by a connection nobody closes (until a full garbage collection).
        self._running: set[asyncio.Future[object]] = set()

    def __len__(self) -> int:
        return len(self._queue)

    async def run(self, what: str, write: Write, *, now: float) -> bool:
        """Write now when nothing waits before it; else (or when the database is away)
        queue it. True when it was written."""
        async with self._lock:
            if self._queue:
                self._push(what, write, now=now)
                return await self._drain(now=now)
            try:
                await self._uncut(write)
            except Exception as error:
                if not database_away(error):
                    raise
                self._push(what, write, now=now, error=error)
                return False
            return True

    async def drain(self, *, now: float) -> bool:
        """Write what waits, oldest first, until one fails. True when the queue is empty."""
        if not self._queue:
            return True
        async with self._lock:
            return await self._drain(now=now)

    async def _drain(self, *, now: float) -> bool:
        written = 0
        while self._queue:
            what, write = self._queue[0]
            try:
                await self._uncut(write)
            except Exception as error:
                if database_away(error):
                    self._note(now, error=error)
                    return False
                # Refused on its merits: retrying cannot help, and it must not block the rest.
                log.exception("alert_write_refused", write=what)
            self._queue.popleft()
            written += 1
        if written:
            log.info("alert_writes_caught_up", written=written, dropped=self.dropped)
        return True

    async def _uncut(self, write: Write) -> object:
        task = asyncio.ensure_future(write())
        self._running.add(task)
        task.add_done_callback(self._finished)
        return await asyncio.shield(task)

    def _finished(self, task: asyncio.Future[object]) -> None:
        self._running.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a caller cancelled meanwhile does not read it

    def _push(
        self, what: str, write: Write, *, now: float, error: BaseException | None = None
    ) -> None:
        if len(self._queue) >= self._limit:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append((what, write))
        self._note(now, error=error)

    def _note(self, now: float, *, error: BaseException | None) -> None:
        # Once, then once a period: during an outage every write fails.
        if now - self._logged_at >= self._log_every_s:
            self._logged_at = now
            log.warning(
                "alert_writes_waiting",
                waiting=len(self._queue),
                dropped=self.dropped,
                error=repr(error)[:300] if error else None,
                note="alerts are still sent; their rows are written when the database is back",
            )
