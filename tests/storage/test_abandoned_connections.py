"""A connection abandoned inside a transaction (its task cancelled, the connection left in
a reference cycle) keeps SQLite's write lock until a full collection; the recorder, on
meeting the lock, collects and gets its batch in."""

from __future__ import annotations

import gc
from pathlib import Path

from sqlalchemy import text

from apiwatch.storage.abandoned import is_locked, release_abandoned_connections
from apiwatch.storage.db import create_engine, create_sessionmaker


async def _abandon_a_writer(sessions) -> None:
    session = sessions()
    await session.execute(text("INSERT INTO t VALUES ('held')"))  # the write lock is taken
    cycle: list[object] = [session]
    cycle.append(cycle)  # only a full collection can free it


async def test_a_collection_releases_the_lock_an_abandoned_writer_holds(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")
    sessions = create_sessionmaker(engine)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (name TEXT)"))
    gc.disable()  # no collection may happen by chance between the steps
    try:
        await _abandon_a_writer(sessions)
        async with sessions() as session:
            await session.execute(text("PRAGMA busy_timeout = 50"))
            try:
                await session.execute(text("INSERT INTO t VALUES ('next')"))
            except Exception as error:  # the abandoned transaction holds the lock
                assert is_locked(error), error
            else:
                raise AssertionError("the abandoned writer did not hold the lock")
        assert release_abandoned_connections(min_interval_s=0.0)
        for _ in range(20):  # the connection's own thread closes it
            try:
                async with sessions() as session:
                    await session.execute(text("PRAGMA busy_timeout = 50"))
                    await session.execute(text("INSERT INTO t VALUES ('next')"))
                    await session.commit()
                break
            except Exception as error:
                assert is_locked(error), error
        async with sessions() as session:
            names = (await session.execute(text("SELECT name FROM t"))).scalars().all()
        assert names == ["next"]  # the abandoned insert was rolled back, the next one went in
    finally:
        gc.enable()
        await engine.dispose()


def test_collections_are_spaced() -> None:
    assert release_abandoned_connections(min_interval_s=0.0)
    assert not release_abandoned_connections(min_interval_s=3600.0)


async def test_the_recorder_gets_past_an_abandoned_writer(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from apiwatch.storage import abandoned
    from apiwatch.storage.migrate import upgrade
    from apiwatch.storage.recorder import Recorder

    url = f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"
    await upgrade(url)
    engine = create_engine(url, connect_args={"timeout": 0.2})
    sessions = create_sessionmaker(engine)
    recorder = Recorder(sessions, retry_initial_s=0.05, retry_max_s=0.1)
    gc.disable()
    try:
        session = sessions()
        await session.execute(text("DELETE FROM events"))  # takes the write lock
        cycle: list[object] = [session]
        cycle.append(cycle)
        del session, cycle
        abandoned._last = float("-inf")  # no collection "too recently" from another test
        at = datetime.now(UTC)
        recorder.record(("events", {"kind": "probe", "provider": "p", "data": {}, "at": at}))
        assert await recorder.flush(max_wait_s=10.0)  # it collected, and the lock went
        async with sessions() as check:
            count = (await check.execute(text("SELECT count(*) FROM events"))).scalar_one()
        assert count == 1
    finally:
        gc.enable()
        await engine.dispose()
