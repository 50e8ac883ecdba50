"""The queue of alert writes that wait for the database: order kept while it is away, a
write refused on its merits dropped without blocking the rest, the bound respected."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from apiwatch.alerting.pending_writes import PendingWrites, database_away


class Database:
    """Stands for the database: away until `back` is set; records the writes it took."""

    def __init__(self) -> None:
        self.back = False
        self.written: list[str] = []

    def write(self, name: str):
        async def run() -> None:
            if not self.back:
                raise OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))
            self.written.append(name)

        return run


async def test_writes_wait_in_order_and_go_when_the_database_is_back() -> None:
    db, writes = Database(), PendingWrites()
    assert await writes.run("fire", db.write("fire"), now=0) is False
    db.back = True  # a later write must still queue behind the first
    assert await writes.run("resolve", db.write("resolve"), now=1) is True
    assert db.written == ["fire", "resolve"] and len(writes) == 0


async def test_drain_stops_at_the_first_failure_and_resumes() -> None:
    db, writes = Database(), PendingWrites()
    for name in ("a", "b", "c"):
        await writes.run(name, db.write(name), now=0)
    assert await writes.drain(now=1) is False and len(writes) == 3
    db.back = True
    assert await writes.drain(now=2) is True
    assert db.written == ["a", "b", "c"]


async def test_a_write_refused_on_its_merits_does_not_block_the_rest() -> None:
    db, writes = Database(), PendingWrites()
    await writes.run("a", db.write("a"), now=0)

    async def refused() -> None:
        raise IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed"))

    await writes.run("bad", refused, now=0)
    await writes.run("b", db.write("b"), now=0)
    db.back = True
    assert await writes.drain(now=1) is True
    assert db.written == ["a", "b"]


async def test_refused_when_nothing_waits_is_raised_not_queued() -> None:
    async def refused() -> None:
        raise IntegrityError("INSERT", {}, sqlite3.IntegrityError("NOT NULL constraint failed"))

    writes = PendingWrites()
    with pytest.raises(IntegrityError):
        await writes.run("bad", refused, now=0)
    assert len(writes) == 0


async def test_the_oldest_write_is_dropped_past_the_limit_and_counted() -> None:
    db, writes = Database(), PendingWrites(limit=2)
    for name in ("a", "b", "c"):
        await writes.run(name, db.write(name), now=0)
    assert (len(writes), writes.dropped) == (2, 1)
    db.back = True
    await writes.drain(now=1)
    assert db.written == ["b", "c"]


def test_what_counts_as_the_database_being_away() -> None:
    locked = OperationalError("x", {}, sqlite3.OperationalError("database is locked"))
    assert database_away(locked)
    assert database_away(ConnectionRefusedError()) and database_away(TimeoutError())
    assert not database_away(IntegrityError("x", {}, sqlite3.IntegrityError("dup")))
    assert not database_away(ValueError("not a database error"))


async def test_a_write_whose_caller_is_cancelled_finishes_and_frees_the_lock(tmp_path) -> None:
    """Cancelled inside its transaction, a write on SQLite used to leave the write lock held
    by an abandoned connection; it now runs to its commit."""
    import asyncio

    from sqlalchemy import text

    from apiwatch.storage.db import create_engine, create_sessionmaker

    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
    sessions = create_sessionmaker(engine)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (name TEXT)"))
    inside = asyncio.Event()

    async def write() -> None:
        async with sessions() as session:
            await session.execute(text("INSERT INTO t VALUES ('fire')"))
            inside.set()
            await asyncio.sleep(0.2)  # the caller is cancelled here, mid-transaction
            await session.commit()

    writes = PendingWrites()
    caller = asyncio.ensure_future(writes.run("fire", write, now=0))
    await inside.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    for _ in range(100):  # the write goes on in its own task: wait for its commit
        async with sessions() as session:
            if (await session.execute(text("SELECT count(*) FROM t"))).scalar_one():
                break
        await asyncio.sleep(0.05)
    try:
        async with sessions() as session:
            await session.execute(text("PRAGMA busy_timeout = 100"))
            await session.execute(text("INSERT INTO t VALUES ('next')"))
            await session.commit()
            names = (await session.execute(text("SELECT name FROM t"))).scalars().all()
        assert sorted(names) == ["fire", "next"]
    finally:
        await engine.dispose()
