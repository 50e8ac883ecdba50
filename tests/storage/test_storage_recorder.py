"""The batched recorder against real databases: batching, interval flushes, retries after a
real failure, bounded memory, and rows that the database refuses."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text

from apiwatch.domain import Outcome, ProbeResult, Status, StatusChange
from apiwatch.storage.models import ConnectionAttempt, DataCollection, StatusChangeRow
from apiwatch.storage.recorder import Recorder

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def result(i: int, *, provider: str = "coingecko") -> ProbeResult:
    return ProbeResult(
        provider=provider,
        endpoint="ping",
        outcome=Outcome.OK,
        started_at=T0 + timedelta(seconds=i),
        latency_ms=12.5,
        status_code=200,
        payload={"ignored": True},
    )


async def count_rows(sessionmaker, model) -> int:
    async with sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(model))


async def wait_until(condition: Callable[[], bool], *, within_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def rename_table(engine, old: str, new: str) -> None:
    async with engine.begin() as connection:
        await connection.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))


async def test_many_records_are_written_in_few_batches(db_sessionmaker):
    recorder = Recorder(db_sessionmaker, batch_size=100, flush_interval_s=0.05)
    await recorder.start()
    for i in range(1000):
        recorder.record(result(i))
    await recorder.stop()

    assert recorder.written == 1000
    assert recorder.batches <= 12
    assert recorder.pending == 0
    assert await count_rows(db_sessionmaker, ConnectionAttempt) == 1000


async def test_a_full_batch_is_written_without_waiting_for_the_interval(db_sessionmaker):
    recorder = Recorder(db_sessionmaker, batch_size=50, flush_interval_s=60)
    await recorder.start()
    try:
        for i in range(120):
            recorder.record(result(i))
        await wait_until(lambda: recorder.written >= 100, within_s=3)
    finally:
        await recorder.stop()
    assert recorder.written == 120


async def test_a_partial_batch_is_written_after_the_flush_interval(db_sessionmaker):
    recorder = Recorder(db_sessionmaker, batch_size=500, flush_interval_s=0.05)
    await recorder.start()
    try:
        for i in range(3):
            recorder.record(result(i))
        assert recorder.written == 0  # record() itself never writes
        await wait_until(lambda: recorder.written == 3, within_s=3)
        assert recorder.batches == 1
        assert await count_rows(db_sessionmaker, ConnectionAttempt) == 3
    finally:
        await recorder.stop()


async def test_flush_writes_queued_rows_without_the_background_task(db_sessionmaker):
    recorder = Recorder(db_sessionmaker, batch_size=10)
    for i in range(25):
        recorder.record(result(i))
    assert await recorder.flush() is True
    assert recorder.written == 25
    assert recorder.batches == 3
    assert await count_rows(db_sessionmaker, ConnectionAttempt) == 25


async def test_a_deep_queue_is_written_in_bigger_batches_until_it_is_short_again(
    db_sessionmaker,
):
    """More than ten batches waiting: a batch takes ten batches' rows (a busy event loop
    costs a few turns per batch, not per row), then back to the batch size."""
    recorder = Recorder(db_sessionmaker, batch_size=10)
    for i in range(250):
        recorder.record(result(i))
    assert await recorder.flush() is True
    # 250 waiting: 100, then 150 waiting: 100, then 50 waiting: five batches of 10.
    assert (recorder.written, recorder.batches) == (250, 7)
    assert await count_rows(db_sessionmaker, ConnectionAttempt) == 250


async def test_failed_writes_are_retried_until_the_table_is_back_and_no_row_is_lost(
    db_engine, db_sessionmaker, caplog
):
    recorder = Recorder(
        db_sessionmaker,
        batch_size=50,
        flush_interval_s=0.02,
        retry_initial_s=0.02,
        retry_max_s=0.05,
    )
    await rename_table(db_engine, "connection_attempts", "connection_attempts_away")
    renamed = True
    try:
        await recorder.start()
        for i in range(120):
            recorder.record(result(i))
        await wait_until(lambda: recorder.failures >= 2)
        assert recorder.written == 0
        assert recorder.pending == 120

        await rename_table(db_engine, "connection_attempts_away", "connection_attempts")
        renamed = False
        for i in range(120, 130):
            recorder.record(result(i))
        await recorder.stop()
    finally:
        if renamed:
            await recorder.stop(max_wait_s=0)
            await rename_table(db_engine, "connection_attempts_away", "connection_attempts")

    assert recorder.written == 130
    assert recorder.pending == 0
    assert recorder.dropped == 0
    async with db_sessionmaker() as session:
        started = (await session.scalars(select(ConnectionAttempt.started_at))).all()
    assert sorted(started) == [T0 + timedelta(seconds=i) for i in range(130)]
    # The retry warning names the error, not the statement and its 50 rows of values.
    retries = [r.getMessage() for r in caplog.records if "will retry" in r.getMessage()]
    assert retries
    assert all("[SQL:" not in m and "coingecko" not in m and len(m) < 400 for m in retries)


async def test_stop_gives_up_after_max_wait_and_keeps_unwritten_rows_pending(
    db_engine, db_sessionmaker
):
    recorder = Recorder(db_sessionmaker, retry_initial_s=0.05, retry_max_s=0.05)
    await rename_table(db_engine, "status_changes", "status_changes_away")
    try:
        await recorder.start()
        recorder.record(StatusChange("etherscan", Status.ONLINE, Status.OFFLINE, "down", T0))
        await recorder.stop(max_wait_s=0.2)
        assert recorder.pending == 1
        assert recorder.failures >= 1
    finally:
        await rename_table(db_engine, "status_changes_away", "status_changes")
    # Still there to write once the database is back.
    assert await recorder.flush() is True
    assert await count_rows(db_sessionmaker, StatusChangeRow) == 1


async def test_bounded_flush_returns_false_while_the_background_task_keeps_retrying(
    db_engine, db_sessionmaker
):
    recorder = Recorder(
        db_sessionmaker, flush_interval_s=0.01, retry_initial_s=0.05, retry_max_s=0.05
    )
    await rename_table(db_engine, "connection_attempts", "connection_attempts_away")
    try:
        await recorder.start()
        recorder.record(result(1))
        await wait_until(lambda: recorder.failures >= 2)  # the background task is retrying
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await recorder.flush(max_wait_s=0.3) is False
        assert loop.time() - started < 2
        assert recorder.pending == 1
    finally:
        await rename_table(db_engine, "connection_attempts_away", "connection_attempts")
    await recorder.stop()
    assert recorder.written == 1


async def test_a_full_queue_drops_the_newest_rows_and_counts_them(db_sessionmaker):
    recorder = Recorder(db_sessionmaker, batch_size=100, max_queue=10)
    for i in range(15):
        recorder.record(result(i))
    assert recorder.pending == 10
    assert recorder.dropped == 5

    await recorder.flush()
    assert recorder.written == 10
    async with db_sessionmaker() as session:
        latest = await session.scalar(select(func.max(ConnectionAttempt.started_at)))
    assert latest == T0 + timedelta(seconds=9)  # the first ten were kept


async def test_status_changes_and_table_tuples_are_written_to_their_tables(db_sessionmaker):
    recorder = Recorder(db_sessionmaker)
    recorder.record(StatusChange("etherscan", Status.UNKNOWN, Status.ONLINE, "first result", T0))
    recorder.record(
        (
            "data_collections",
            {
                "provider": "coingecko",
                "category": "market_data",
                "item": "bitcoin.usd",
                "value": Decimal("97000.5"),
                "values": {"change_24h": -1.2},
                "fetched_at": T0,
            },
        )
    )
    # A different column set for the same table goes in the same transaction.
    recorder.record(
        (
            "data_collections",
            {
                "provider": "alternative_me",
                "category": "sentiment",
                "item": "fear_greed",
                "text": "Extreme Fear",
                "fetched_at": T0,
            },
        )
    )
    await recorder.flush()
    assert recorder.batches == 1

    async with db_sessionmaker() as session:
        change = (await session.execute(select(StatusChangeRow))).scalar_one()
        data = (await session.scalars(select(DataCollection).order_by(DataCollection.id))).all()
    assert (change.provider, change.old_status, change.new_status) == (
        "etherscan",
        "unknown",
        "online",
    )
    assert change.changed_at == T0
    assert [(d.item, d.value, d.text, d.values) for d in data] == [
        ("bitcoin.usd", Decimal("97000.5"), None, {"change_24h": -1.2}),
        ("fear_greed", None, "Extreme Fear", None),
    ]


async def test_a_bad_row_is_rejected_and_the_rest_of_its_batch_is_written(db_sessionmaker):
    recorder = Recorder(db_sessionmaker)
    recorder.record(result(1))
    # Missing NOT NULL columns: the database refuses this row, whatever we retry.
    recorder.record(("data_collections", {"provider": "x", "fetched_at": T0}))
    recorder.record(result(2))
    assert await recorder.flush() is True

    assert recorder.rejected == 1
    assert recorder.written == 2
    assert recorder.pending == 0
    assert await count_rows(db_sessionmaker, ConnectionAttempt) == 2


@pytest.mark.parametrize(
    "item",
    [
        ("no_such_table", {"provider": "x"}),
        ("connection_attempts", {"no_such_column": 1}),
        object(),
    ],
    ids=["unknown-table", "unknown-column", "unregistered-type"],
)
def test_record_refuses_what_it_cannot_store_in_the_caller(item):
    recorder = Recorder(sessionmaker=None)  # never reaches the database
    with pytest.raises((ValueError, TypeError)):
        recorder.record(item)
    assert recorder.pending == 0
