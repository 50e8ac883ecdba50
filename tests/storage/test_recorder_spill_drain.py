"""The recorder after a database outage, under steady load (PostgreSQL behind a proxy the
test cuts): once the database takes rows again, new rows go to memory and the spill file
drains in turns with them, so the file stops growing and is written back and removed while
rows keep coming; no row is lost or written twice."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from apiwatch.domain import Outcome, ProbeResult
from apiwatch.storage.db import create_engine, create_sessionmaker
from apiwatch.storage.models import ConnectionAttempt
from apiwatch.storage.recorder import Recorder
from tests.faults.servers import CuttableProxy

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def result(n: int) -> ProbeResult:
    return ProbeResult(
        provider="binance",
        endpoint="health",
        outcome=Outcome.OK,
        status_code=200,
        latency_ms=float(n),
        started_at=T0 + timedelta(milliseconds=n),
    )


async def stored(url: str) -> int:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            count = select(func.count(ConnectionAttempt.id))
            return int((await connection.execute(count)).scalar_one())
    finally:
        await engine.dispose()


async def slow_down(proxy: CuttableProxy) -> None:
    """A slow database: every byte either way is held 10 ms out of every 15."""
    while True:
        proxy.pause()
        await asyncio.sleep(0.010)
        proxy.resume()
        await asyncio.sleep(0.005)


@pytest.mark.parametrize(
    ("spilled", "rows_per_tick", "slow"),
    [(900, 20, False), (1_900, 5, True)],
    ids=["fast-database", "slow-database"],
)
async def test_the_file_stops_growing_once_the_database_is_back_and_drains_under_load(
    postgres_behind_proxy: tuple[str, str, CuttableProxy],
    tmp_path: Path,
    spilled: int,
    rows_per_tick: int,
    slow: bool,
) -> None:
    """With a slow database, batches read back from the file are in flight for long
    stretches (500 rows while more than ten batches wait): rows recorded meanwhile go to
    memory, which has room, not to the file, whose rows are not memory's."""
    via, direct, proxy = postgres_behind_proxy
    engine = create_engine(via)
    recorder = Recorder(
        create_sessionmaker(engine),
        batch_size=50,
        flush_interval_s=0.02,
        max_queue=100,
        spill_dir=tmp_path / "spill",
        retry_initial_s=0.05,
        retry_max_s=0.2,
    )
    await recorder.start()
    sent = 0
    slowing: asyncio.Task[None] | None = None
    try:
        proxy.cut()
        for _ in range(100 + spilled):  # 100 in memory, the rest to the file
            recorder.record(result(sent))
            sent += 1
        assert recorder.spill is not None
        assert recorder.spill.written == spilled
        proxy.restore()
        if slow:
            slowing = asyncio.create_task(slow_down(proxy))

        # Steady load while the database catches up.
        on_disk_when_back = None
        for _ in range(1_500):
            for _ in range(rows_per_tick):
                recorder.record(result(sent))
                sent += 1
            await asyncio.sleep(0.01)
            if on_disk_when_back is None and recorder.spill.replayed:
                on_disk_when_back = recorder.spill.written
            if on_disk_when_back is not None and not recorder.spill.pending:
                break
        assert on_disk_when_back is not None, "nothing was written back under load"
        # After the database took its first spilled batch, nothing more went to the file,
        # and the file was written back whole while the load went on.
        assert recorder.spill.written == on_disk_when_back
        assert recorder.spill.pending == 0
        assert not list((tmp_path / "spill").glob("recorder-*.jsonl"))
        if slowing is not None:
            slowing.cancel()
            proxy.resume()
        assert await recorder.flush(max_wait_s=20)
    finally:
        if slowing is not None:
            slowing.cancel()
            proxy.resume()
        await recorder.stop()
        await engine.dispose()
    assert await stored(direct) == sent  # every row once


async def rename_table(engine: AsyncEngine, old: str, new: str) -> None:
    async with engine.begin() as connection:
        await connection.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))


async def test_a_batch_read_back_from_the_file_leaves_memory_its_room_and_is_not_spilled_twice(
    db_engine: AsyncEngine, db_sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """A batch read back from the file and waiting to be retried is still in the file: rows
    recorded meanwhile fill memory up to `max_queue` before any goes to the file, and a stop
    that gives up does not append the batch to the file a second time."""
    spill = tmp_path / "spill"
    settings = {"batch_size": 5, "max_queue": 10, "spill_dir": spill, "retry_max_s": 0.05}
    await rename_table(db_engine, "connection_attempts", "connection_attempts_away")
    try:
        # A process that stopped with the database away leaves 210 rows in the file.
        first = Recorder(db_sessionmaker, retry_initial_s=0.01, **settings)
        for n in range(210):
            first.record(result(n))
        await first.stop(max_wait_s=0)
        assert first.spill is not None and first.spill.written == 210

        # The next one reads a batch of 50 back (more than ten batches wait); it fails.
        second = Recorder(db_sessionmaker, retry_initial_s=0.01, **settings)
        await second.start()
        assert second.spill is not None and second.spill.pending == 210
        deadline = asyncio.get_running_loop().time() + 5
        while second.failures < 2:
            assert asyncio.get_running_loop().time() < deadline, "the read-back never failed"
            await asyncio.sleep(0.01)
        assert second.pending == 210  # the batch in flight is counted once, by the file

        for n in range(210, 220):
            second.record(result(n))
        assert second.spill.written == 0  # memory had its ten rows' room
        second.record(result(220))
        assert second.spill.written == 1  # then it was full

        await second.stop(max_wait_s=0)
        assert second.spill.pending == 221  # 210 left, 10 from memory, 1 spilled: none twice
    finally:
        await rename_table(db_engine, "connection_attempts_away", "connection_attempts")

    third = Recorder(db_sessionmaker, **settings)
    await third.start()
    assert await third.flush(max_wait_s=10)
    await third.stop()
    async with db_sessionmaker() as session:
        latencies = (await session.scalars(select(ConnectionAttempt.latency_ms))).all()
    assert sorted(latencies) == [float(n) for n in range(221)]  # every row, once
