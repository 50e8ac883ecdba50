"""The batched writer: the one path by which probe results and events reach the database.

`Recorder.record()` only appends to an in-memory queue, so no probe or request ever waits
for a commit (DESIGN.md §5). A background task writes the queue in batches, one multi-row
INSERT per table in one transaction, when a batch fills or every flush interval.

Failure policy, so rows are never lost silently:
- the database is unreachable or refuses the statement (locked, table missing, connection
  reset): the batch is kept and retried with exponential backoff, in order;
- a row itself is bad (constraint violation, naive datetime, value out of range): the batch
  is retried row by row, and the bad rows are logged and counted in `rejected`;
- the queue is full: the newest row is refused and counted in `dropped` (and logged, once
  per run of drops), so memory stays bounded while the database is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from apiwatch.domain import ProbeResult, StatusChange
from apiwatch.storage.models import TABLES

log = logging.getLogger(__name__)

Row = dict[str, Any]
RowFunction = Callable[[Any], Row]


def probe_result_row(result: ProbeResult) -> Row:
    # The payload and headers are for collectors and budgets; they are never stored here.
    return {
        "provider": result.provider,
        "endpoint": result.endpoint,
        "outcome": str(result.outcome),
        "status_code": result.status_code,
        "latency_ms": result.latency_ms,
        "reason": result.reason,
        "attempt": result.attempt,
        "final": result.final,
        "key_label": result.key_label,
        "response_bytes": result.response_bytes,
        "started_at": result.started_at,
    }


def status_change_row(change: StatusChange) -> Row:
    return {
        "provider": change.provider,
        "old_status": str(change.old),
        "new_status": str(change.new),
        "reason": change.reason,
        "changed_at": change.at,
    }


# What the recorder knows how to store: a domain type -> (table, row function).
# A new kind of record is one entry here.
ROW_MAPPERS: dict[type, tuple[str, RowFunction]] = {
    ProbeResult: ("connection_attempts", probe_result_row),
    StatusChange: ("status_changes", status_change_row),
}


_COLUMNS: dict[str, frozenset[str]] = {
    name: frozenset(table.columns.keys()) for name, table in TABLES.items()
}


def _is_bad_row_error(error: BaseException) -> bool:
    """True when retrying the same rows cannot succeed: the rows themselves are wrong."""
    if isinstance(error, IntegrityError | DataError):
        return True
    # SQLSTATE class 22 (data exception, e.g. a NUL byte in text on PostgreSQL) is about
    # the values, not the database's health: retrying the same rows would block forever.
    sqlstate = getattr(getattr(error, "orig", None), "sqlstate", None) or getattr(
        getattr(error, "orig", None), "pgcode", None
    )
    if isinstance(sqlstate, str) and sqlstate.startswith(("22", "54")):
        # Class 54 (program limit exceeded, e.g. an index row over PostgreSQL's 2,704
        # bytes) is about the row too.
        return True
    # A StatementError that is not a DBAPIError was raised before the database saw the
    # statement, while binding a value (e.g. a naive datetime).
    if isinstance(error, StatementError) and not isinstance(error, DBAPIError):
        return True
    return isinstance(error, TypeError | ValueError)


class Recorder:
    """Queue rows in memory and write them in batches in the background.

    Counters: `written` (rows committed), `batches` (transactions committed), `failures`
    (write attempts that failed and will be retried), `dropped` (rows refused because the
    queue was full), `rejected` (rows the database refused as invalid), `pending` (rows
    queued or in flight).
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        batch_size: int = 500,
        flush_interval_s: float = 0.1,
        max_queue: int = 100_000,
        retry_initial_s: float = 0.2,
        retry_max_s: float = 10.0,
    ) -> None:
        if batch_size < 1 or max_queue < 1:
            raise ValueError("batch_size and max_queue must be at least 1")
        self._sessionmaker = sessionmaker
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._max_queue = max_queue
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s

        self._queue: deque[tuple[str, Row]] = deque()
        # The batch being written; kept here, not in a local, so a failed write loses nothing.
        self._inflight: list[tuple[str, Row]] = []
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._consecutive_failures = 0
        self._dropping = False

        self.written = 0
        self.batches = 0
        self.failures = 0
        self.dropped = 0
        self.rejected = 0

    @property
    def pending(self) -> int:
        return len(self._queue) + len(self._inflight)

    # -- producing -------------------------------------------------------------------------

    def record(self, item: Any) -> None:
        """Queue `item` for writing; never blocks and never touches the database.

        `item` is a registered domain object (`ProbeResult`, `StatusChange`, see
        `ROW_MAPPERS`) or a `(table_name, row_dict)` tuple for tables without a domain type.
        A wrong table or column raises here, in the caller, rather than failing a batch later.
        """
        mapper = ROW_MAPPERS.get(type(item))
        if mapper is not None:
            table, row_function = mapper
            row = row_function(item)
        elif isinstance(item, tuple) and len(item) == 2:
            table, row = item
            self._check_row(table, row)
        else:
            raise TypeError(
                f"cannot record {type(item).__name__}: register it in ROW_MAPPERS "
                "or pass a (table_name, row_dict) tuple"
            )

        if self.pending >= self._max_queue:
            self.dropped += 1
            if not self._dropping:
                self._dropping = True
                log.error(
                    "recorder queue full (%d rows); dropping new rows until it drains",
                    self._max_queue,
                )
            return
        self._dropping = False
        self._queue.append((table, row))
        if len(self._queue) >= self._batch_size:
            self._wake.set()

    @staticmethod
    def _check_row(table: str, row: Row) -> None:
        columns = _COLUMNS.get(table)
        if columns is None:
            raise ValueError(f"unknown table {table!r}")
        if not isinstance(row, dict):
            raise TypeError(f"row for {table!r} must be a dict, not {type(row).__name__}")
        if not row.keys() <= columns:  # called per request for usage rows: keep it cheap
            unknown = row.keys() - columns
            raise ValueError(f"unknown columns for {table!r}: {sorted(unknown)}")

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the background flush task (idempotent)."""
        if self._task is None or self._task.done():
            self._stopping.clear()
            self._task = asyncio.create_task(self._run(), name="apiwatch-recorder")

    async def flush(self, *, max_wait_s: float | None = None) -> bool:
        """Write everything queued now, retrying through failures.

        Returns True when it was all written; False when the database stayed unavailable
        for `max_wait_s` seconds (the rows stay queued). A bound given here rather than by
        cancelling the call: cancelling just after a commit would write the batch twice.
        """
        loop = asyncio.get_running_loop()
        deadline = None if max_wait_s is None else loop.time() + max_wait_s
        async with self._lock:
            # Rows recorded while we flush are left to the background task, so a flush under
            # steady load still ends.
            return await self._drain(limit=self.pending, deadline=deadline, retry=True)

    async def stop(self, *, max_wait_s: float | None = 10.0) -> None:
        """Stop the background task and write what is queued.

        Gives up after `max_wait_s` seconds (None: never) if the database stays unavailable,
        logging how many rows were not written; they remain counted in `pending`.
        """
        self._stopping.set()
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        if not await self.flush(max_wait_s=max_wait_s):
            log.error("recorder stopped with %d rows not written", self.pending)

    # -- writing ---------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._flush_interval_s)
            self._wake.clear()
            if self._stopping.is_set() or not self.pending:
                continue
            async with self._lock:
                written = await self._drain(limit=None, deadline=None, retry=False)
            if not written:
                # Back off outside the lock, so a flush() or stop() meanwhile can try with
                # its own time bound; stop() also cuts the wait short.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self._backoff_s())

    def _backoff_s(self) -> float:
        exponent = max(self._consecutive_failures - 1, 0)
        return min(self._retry_initial_s * 2**exponent, self._retry_max_s)

    async def _drain(self, *, limit: int | None, deadline: float | None, retry: bool) -> bool:
        """Write batches until the queue is empty or `limit` rows are done.

        On a failed write: return False at once (`retry=False`), or back off and try again
        until `deadline` (loop time; None: no end).
        """
        loop = asyncio.get_running_loop()
        done = 0
        while self.pending and (limit is None or done < limit):
            if not self._inflight:
                count = min(self._batch_size, len(self._queue))
                self._inflight = [self._queue.popleft() for _ in range(count)]
            size = len(self._inflight)
            if await self._write_inflight():
                done += size
                self._consecutive_failures = 0
                continue
            self.failures += 1
            self._consecutive_failures += 1
            delay = self._backoff_s()
            if not retry or (deadline is not None and loop.time() + delay > deadline):
                return False
            await asyncio.sleep(delay)
        return True

    async def _write_inflight(self) -> bool:
        """Write the in-flight batch in one transaction. True when it is done with."""
        batch = self._inflight
        try:
            await self._insert(batch)
        except Exception as error:
            if _is_bad_row_error(error):
                return await self._write_rows_one_by_one()
            log.warning(
                "recorder write of %d rows failed (attempt %d), will retry: %s",
                len(batch),
                self._consecutive_failures + 1,
                error,
            )
            return False
        self._inflight = []
        self.written += len(batch)
        self.batches += 1
        return True

    async def _write_rows_one_by_one(self) -> bool:
        """Isolate the bad rows of a batch: write each row alone, reject those refused."""
        while self._inflight:
            entry = self._inflight[0]
            try:
                await self._insert([entry])
            except Exception as error:
                if not _is_bad_row_error(error):
                    log.warning("recorder write failed, will retry: %s", error)
                    return False
                self.rejected += 1
                log.error("recorder rejected a row for %s: %s; row=%r", entry[0], error, entry[1])
            else:
                self.written += 1
                self.batches += 1
            self._inflight.pop(0)
        return True

    async def _insert(self, entries: Iterable[tuple[str, Row]]) -> None:
        # Rows are grouped per table and column set: an executemany needs the same keys in
        # every row, and SQLAlchemy turns each group into multi-row INSERT statements.
        groups: dict[tuple[str, frozenset[str]], list[Row]] = {}
        for table, row in entries:
            groups.setdefault((table, frozenset(row)), []).append(row)
        async with self._sessionmaker() as session, session.begin():
            # Core execution on the session's connection: the ORM's bulk-insert path costs
            # about a third more per row, and this runs on the event loop that serves requests.
            connection = await session.connection()
            for (table, _columns), rows in groups.items():
                await connection.execute(insert(TABLES[table]), rows)
