"""The batched writer: the one path by which probe results and events reach the database.

`Recorder.record()` only appends to an in-memory queue, so no probe or request ever waits
for a commit (docs/operations.md). A background task writes the queue in batches, one multi-row
INSERT per table in one transaction, when a batch fills or every flush interval.

Failure policy, so rows are never lost silently:
- the database is unreachable or refuses the statement (locked, table missing, connection
  reset): the batch is kept and retried with exponential backoff, in order;
- a row itself is bad (constraint violation, naive datetime, value out of range): the batch
  is retried row by row, and the bad rows are logged and counted in `rejected`;
- two queues, so nothing important waits behind bulk: request usage rows (`BULK_TABLES`)
  have their own bounded queue and are written last; when it is full the newest usage row
  is dropped and counted in `dropped`;
- everything else (probe results, status changes, events, data) is never dropped while a
  spill directory is set: past `max_queue` rows in memory, new rows are appended to a local
  file (`spill.Spill`) and read back once the database answers; once it has taken a
  batch from the file, new rows go to memory again and the two take turns, so a process
  under steady load does not chase its own file. A batch read back from the file is not
  counted against `max_queue` while it is written (its rows stay in the file until then),
  so memory may hold `max_queue` rows plus that batch. Without a spill directory rows past
  `max_queue` are dropped and counted, as usage rows are.
Memory stays bounded while the database is down and is handed back when the queues drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from apiwatch.dependencies import Dependency
from apiwatch.storage.abandoned import is_locked, release_abandoned_connections
from apiwatch.storage.driver_insert import prepare
from apiwatch.storage.models import TABLES
from apiwatch.storage.recorder_rows import ROW_MAPPERS, Row, is_bad_row_error
from apiwatch.storage.spill import Spill

log = logging.getLogger(__name__)


# Rows that may be dropped when memory is short: one per API request, many under load.
BULK_TABLES = frozenset({"api_usage"})
# Tables written through the driver's executemany (`driver_insert`): one row per API request
# or per probe, thousands a second, where SQLAlchemy's per-row work is most of the cost.
DRIVER_TABLES = BULK_TABLES | {"connection_attempts"}

_COLUMNS: dict[str, frozenset[str]] = {
    name: frozenset(table.columns.keys()) for name, table in TABLES.items()
}


# While more than this many batches wait, a batch takes this many batches' rows.
CATCH_UP = 10


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
        max_bulk: int | None = None,
        spill_dir: Path | None = None,
        retry_initial_s: float = 0.2,
        retry_max_s: float = 10.0,
    ) -> None:
        if batch_size < 1 or max_queue < 1:
            raise ValueError("batch_size and max_queue must be at least 1")
        self._sessionmaker = sessionmaker
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._max_queue = max_queue
        self._max_bulk = max_queue if max_bulk is None else max_bulk
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s

        self._queue: deque[tuple[str, Row]] = deque()
        self._bulk: deque[tuple[str, Row]] = deque()
        self.spill = Spill(spill_dir) if spill_dir is not None else None
        # True from the first spilled row until the database takes rows again: new rows go
        # to the file meanwhile. Once it does, new rows go to memory and the file drains in
        # turns with them, so a process under steady load does not chase its own file.
        self._spilling = False
        self._file_turn = False  # while both wait: the next batch comes from the file
        self._told_replayed = 0  # rows written back as of the last "written back" line
        # Set when the in-flight batch came from the spill file: confirmed there once written,
        # for as many rows as were read (some may have been written one by one before).
        self._spill_mark: tuple[Path, int, int] | None = None
        self._spill_rows = 0
        # The batch being written; kept here, not in a local, so a failed write loses nothing.
        self._inflight: list[tuple[str, Row]] = []
        # Whether it came from the memory queue: only then does it count against `max_queue`.
        # A batch read back from the file is still in the file (past its offset), and usage
        # rows have their own bound.
        self._inflight_queued = False
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._consecutive_failures = 0
        self._dropping = False

        # Told of every write's fate; /healthz and alerting read it.
        # Away only after 10 s of failures: SQLite's busy timeout alone is 5 s.
        self.database = Dependency(
            "database", fallback="results kept in memory, then on disk", grace_s=10.0
        )

        self.written = 0
        self.batches = 0
        self.failures = 0
        self.dropped = 0
        self.rejected = 0
        self.flush_seconds = 0.0  # time spent in the batches written (the metrics' sum)

    @property
    def pending(self) -> int:
        """Rows not yet written: in memory, in flight and spilled to disk."""
        spilled = self.spill.pending if self.spill is not None else 0
        # A batch read back from the file is still counted by the file until it is written.
        inflight = 0 if self._spill_mark is not None else len(self._inflight)
        return len(self._queue) + len(self._bulk) + inflight + spilled

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

        if table in BULK_TABLES:
            if len(self._bulk) >= self._max_bulk:
                self._drop(table)
                return
            self._bulk.append((table, row))
        elif self._spilling or len(self._queue) + self._inflight_in_memory() >= self._max_queue:
            if not self._to_spill(table, row):
                self._drop(table)
                return
        else:
            self._queue.append((table, row))
        self._dropping = False
        if len(self._queue) + len(self._bulk) >= self._batch_size:
            self._wake.set()

    def _inflight_in_memory(self) -> int:
        """Rows in flight that count against `max_queue`: those of a batch taken from the
        memory queue. Counted, a batch read back from the file (up to ten batches' rows) took
        the memory queue's room and sent the rows recorded during its write to the file,
        which the process then chased under a slow database."""
        return len(self._inflight) if self._inflight_queued else 0

    def _to_spill(self, table: str, row: Row) -> bool:
        if self.spill is None:
            return False
        if not self._spilling:
            self._spilling = True
            log.error(
                "recorder memory queue full (%d rows); spilling new rows to %s until the "
                "database takes them",
                self._max_queue,
                self.spill.path,
            )
        try:
            self.spill.append(table, row)
        except (OSError, TypeError, ValueError) as error:
            log.error("recorder spill failed: %s", error)
            return False
        return True

    def _drop(self, table: str) -> None:
        self.dropped += 1
        if not self._dropping:
            self._dropping = True
            log.error("recorder queue full; dropping new %s rows until it drains", table)

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

    async def replay_spilled(self, *, max_wait_s: float | None = 10.0) -> bool:
        """Write the rows an earlier run spilled (to this directory) now, before anything
        reads the database at start: statuses restored without them would be those of
        before that run's last results. True when none are left on disk; False when the
        database stayed unavailable for `max_wait_s` seconds (the background task writes
        them once it answers, as it would have anyway)."""
        if self.spill is None:
            return True
        left = self.spill.adopt_leftovers()
        if left:
            log.warning("recorder replays %d rows spilled by an earlier run", left)
        if not self.spill.pending:
            return True
        done = await self.flush(max_wait_s=max_wait_s)
        if not done:
            log.error(
                "recorder could not write %d spilled rows at start; they stay in %s",
                self.spill.pending,
                self.spill.directory,
            )
        return done

    async def start(self) -> None:
        """Start the background flush task (idempotent); rows spilled by an earlier run and
        not written by `replay_spilled` are written by it first."""
        if self._task is None or self._task.done():
            if self.spill is not None:
                left = self.spill.adopt_leftovers()
                if left:
                    log.warning("recorder replays %d rows spilled by an earlier run", left)
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
            if self.spill is not None:
                # What memory holds goes to disk, for the next start to write. A batch read
                # back from the file is there still, past the offset last confirmed.
                held = [*self._queue, *self._bulk]
                if self._spill_mark is None:
                    held[:0] = self._inflight
                for table, row in held:
                    self._spilling = True
                    self.spill.append(table, row)
                self._inflight, self._queue, self._bulk = [], deque(), deque()
                self._spill_mark, self._inflight_queued = None, False
                log.error(
                    "recorder stopped with the database away; %d rows kept in %s for the "
                    "next start",
                    self.spill.pending,
                    self.spill.directory,
                )
            else:
                log.error("recorder stopped with %d rows not written", self.pending)
        if self.spill is not None:
            self.spill.close()

    # -- writing ---------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._flush_interval_s)
            self._wake.clear()
            if self.spill is not None:
                self.spill.sync()
            if self._stopping.is_set() or not self.pending:
                continue
            async with self._lock:
                written = await self._drain(
                    limit=None, deadline=None, retry=False, full_batches=True
                )
            if not written:
                # Back off outside the lock, so a flush() or stop() meanwhile can try with
                # its own time bound; stop() also cuts the wait short.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self._backoff_s())

    def _backoff_s(self) -> float:
        exponent = max(self._consecutive_failures - 1, 0)
        return min(self._retry_initial_s * 2**exponent, self._retry_max_s)

    async def _drain(
        self,
        *,
        limit: int | None,
        deadline: float | None,
        retry: bool,
        full_batches: bool = False,
    ) -> bool:
        """Write batches until the queue is empty or `limit` rows are done; with
        `full_batches`, after the first batch only while a whole batch is waiting.

        On a failed write: return False at once (`retry=False`), or back off and try again
        until `deadline` (loop time; None: no end).
        """
        loop = asyncio.get_running_loop()
        done = 0
        while self.pending and (limit is None or done < limit):
            if done and full_batches and not self._inflight and not self._batch_waiting():
                # What arrived during the last write waits for the next turn: written at
                # once, it went in batches of a few rows, each its own transaction (about
                # 130 a second at 1,000 probes a second, most of the writer's cost).
                break
            if not self._inflight and not self._next_batch():
                break
            size = len(self._inflight)
            if await self._write_inflight():
                done += size
                self._consecutive_failures = 0
                if self._spill_mark is not None and self.spill is not None:
                    self.spill.done(self._spill_mark, self._spill_rows)
                    self._spill_mark = None
                    self._database_back()
                    if not self.spill.pending:
                        self._spilled_back()
                continue
            self.failures += 1
            self._consecutive_failures += 1
            delay = self._backoff_s()
            if not retry or (deadline is not None and loop.time() + delay > deadline):
                return False
            await asyncio.sleep(delay)
        return True

    def _batch_waiting(self) -> bool:
        if self.spill is not None and (self._spilling or self.spill.pending):
            return True  # the file is written back as fast as it goes
        size = self._batch_size
        return len(self._queue) >= size or len(self._bulk) >= size

    def _next_batch(self) -> bool:
        """The next batch in order of importance: memory, then the spill file (older than
        anything queued after it), then usage rows; while memory and a file that is being
        written back both hold rows, they take turns. False when there is nothing to write."""
        from_file = (
            self._file_turn and not self._spilling and self.spill is not None and self.spill.pending
        )
        self._file_turn = not self._file_turn
        if self._queue and not from_file:
            count = min(self._size_for(len(self._queue)), len(self._queue))
            self._inflight = [self._queue.popleft() for _ in range(count)]
            self._inflight_queued = True
            if not self._queue:
                self._queue = deque()  # hand the emptied deque's blocks back
            return True
        if self.spill is not None and (self._spilling or self.spill.pending):
            entries, mark = self.spill.read(self._size_for(self.spill.pending))
            if entries:
                self._inflight, self._spill_mark = entries, mark
                self._spill_rows, self._inflight_queued = len(entries), False
                return True
            self._spilled_back()
        if self._bulk:
            count = min(self._size_for(len(self._bulk)), len(self._bulk))
            self._inflight = [self._bulk.popleft() for _ in range(count)]
            self._inflight_queued = False
            if not self._bulk:
                self._bulk = deque()
            return True
        return False

    def _size_for(self, waiting: int) -> int:
        """Rows for the next batch when `waiting` rows wait: the batch size, or ten of them
        while more than ten batches wait. A batch costs a few turns of the event loop
        whatever its size; behind a busy loop (a turn of 25 ms at 5,000 probes a second
        demanded) batches of 500 were written at 2,000 rows a second and the queue spilled
        to disk, where bigger ones keep up."""
        size = self._batch_size
        return size * CATCH_UP if waiting > size * CATCH_UP else size

    def _database_back(self) -> None:
        """A spilled batch was written: the database takes rows again, so new rows go to
        memory from now on while the rest of the file is written back in turns with them."""
        if self._spilling and self.spill is not None and self.spill.pending:
            self._spilling = False
            log.warning(
                "recorder writes back %d spilled rows; new rows go to memory again",
                self.spill.pending,
            )

    def _spilled_back(self) -> None:
        """Everything on disk is written: new rows go to memory again."""
        if self.spill is not None and (self._spilling or self.spill.replayed):
            if self._spilling or self._told_replayed != self.spill.replayed:
                log.warning(
                    "recorder spill file written back (%d rows); memory queue in use again",
                    self.spill.replayed,
                )
            self._told_replayed = self.spill.replayed
            self._spilling = False

    async def _write_inflight(self) -> bool:
        """Write the in-flight batch in one transaction. True when it is done with."""
        batch = self._inflight
        began = time.perf_counter()
        try:
            await self._insert(batch)
        except Exception as error:
            if is_bad_row_error(error):
                self.database.succeeded()
                return await self._write_rows_one_by_one()
            self.database.failed(error)
            if is_locked(error):
                release_abandoned_connections()  # if one of ours holds the lock
            log.warning(
                "recorder write of %d rows failed (attempt %d), will retry: %s",
                len(batch),
                self._consecutive_failures + 1,
                _first_line(error),
            )
            return False
        self.database.succeeded()
        self._inflight = []
        self.written += len(batch)
        self.batches += 1
        self.flush_seconds += time.perf_counter() - began
        return True

    async def _write_rows_one_by_one(self) -> bool:
        """Isolate the bad rows of a batch: write each row alone, reject those refused."""
        while self._inflight:
            entry = self._inflight[0]
            try:
                await self._insert([entry])
            except Exception as error:
                if not is_bad_row_error(error):
                    log.warning("recorder write failed, will retry: %s", _first_line(error))
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
        # every row, and SQLAlchemy turns each group into multi-row INSERT statements. The
        # keys in their order identify a group: cheaper per row than a frozenset, and rows
        # built by one producer list them in one order.
        groups: dict[tuple[str, tuple[str, ...]], list[Row]] = {}
        for table, row in entries:
            signature = (table, tuple(row))
            group = groups.get(signature)
            if group is None:
                groups[signature] = [row]
            else:
                group.append(row)
        async with self._sessionmaker() as session, session.begin():
            # Core execution on the session's connection: the ORM's bulk-insert path costs
            # about a third more per row, and this runs on the event loop that serves requests.
            connection = await session.connection()
            for (table, keys), rows in groups.items():
                columns = frozenset(keys)
                # Usage and probe rows skip SQLAlchemy's per-row work.
                fast = (
                    prepare(TABLES[table], columns, connection.dialect)
                    if table in DRIVER_TABLES
                    else None
                )
                if fast is not None:
                    await fast.execute(connection, rows)
                else:
                    await connection.execute(insert(TABLES[table]), rows)


def _first_line(error: BaseException) -> str:
    """The error without the statement and parameters SQLAlchemy appends to it: a failed
    batch's message otherwise carries every row of the batch (kilobytes a line)."""
    return str(error).split("\n", 1)[0][:300] or type(error).__name__
