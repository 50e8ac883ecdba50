"""Probe rows (`connection_attempts`) go through the driver's executemany, on SQLite and
PostgreSQL: stored exactly as SQLAlchemy's own insert stores them, in the order recorded,
and a bad row rejected alone while the rest of its batch is written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import insert, select

from apiwatch.domain import Outcome, ProbeResult
from apiwatch.storage.driver_insert import prepare
from apiwatch.storage.models import TABLES, ConnectionAttempt
from apiwatch.storage.recorder import Recorder
from apiwatch.storage.recorder_rows import probe_result_row

T0 = datetime(2025, 1, 1, 12, 0, 0, 654321, tzinfo=UTC)
COLUMNS = (
    "provider",
    "endpoint",
    "outcome",
    "status_code",
    "latency_ms",
    "reason",
    "attempt",
    "final",
    "key_label",
    "response_bytes",
    "started_at",
    "location",
)


def probe(i: int, **changes: object) -> ProbeResult:
    fields: dict[str, object] = {
        "provider": f"provider-{i}",
        "endpoint": "health",
        "outcome": list(Outcome)[i % len(Outcome)],
        # Offsets other than UTC are stored as the same instant in UTC.
        "started_at": (T0 + timedelta(seconds=i)).astimezone(timezone(timedelta(hours=-5))),
        "latency_ms": 0.25 * i,
        "status_code": 200 + i,
        "reason": f"reason {i}",
        "attempt": 1 + i % 3,
        "final": i % 2 == 0,
        "key_label": f"key…{i}",
        "response_bytes": 100 * i,
        "location": "eu" if i % 2 else "",
    }
    fields.update(changes)
    return ProbeResult(**fields)  # type: ignore[arg-type]


async def stored(sessionmaker) -> list[tuple[object, ...]]:
    async with sessionmaker() as session:
        rows = (
            await session.scalars(select(ConnectionAttempt).order_by(ConnectionAttempt.id))
        ).all()
    return [tuple(getattr(r, c) for c in COLUMNS) for r in rows]


async def test_probe_rows_are_stored_as_sqlalchemys_insert_stores_them(db_sessionmaker):
    recorder = Recorder(db_sessionmaker)
    results = [probe(i) for i in range(1, 8)]
    results.append(probe(8, latency_ms=None, status_code=None, key_label=None, response_bytes=None))
    for result in results:
        recorder.record(result)
    assert await recorder.flush() is True
    assert (recorder.written, recorder.batches, recorder.rejected) == (8, 1, 0)
    through_driver = await stored(db_sessionmaker)

    rows = [probe_result_row(result) for result in results]
    async with db_sessionmaker() as session, session.begin():
        connection = await session.connection()
        assert prepare(TABLES["connection_attempts"], frozenset(rows[0]), connection.dialect)
        await connection.execute(insert(TABLES["connection_attempts"]), rows)
    both = await stored(db_sessionmaker)
    assert both[8:] == through_driver == both[:8]
    assert through_driver[0] == (
        "provider-1",
        "health",
        "slow",
        201,
        0.25,
        "reason 1",
        2,
        False,
        "key…1",
        100,
        T0 + timedelta(seconds=1),
        "eu",
    )
    assert through_driver[0][10].tzinfo is not None
    assert through_driver[7][3:5] == (None, None)
    assert through_driver[7][8:10] == (None, None)


async def test_a_batch_larger_than_one_statement_keeps_its_order(db_sessionmaker):
    recorder = Recorder(db_sessionmaker)
    for i in range(250):
        recorder.record(probe(i))
    assert await recorder.flush() is True
    assert recorder.written == 250
    assert [row[0] for row in await stored(db_sessionmaker)] == [
        f"provider-{i}" for i in range(250)
    ]


async def test_a_naive_timestamp_is_rejected_alone_and_the_batch_is_written(db_sessionmaker):
    recorder = Recorder(db_sessionmaker)
    recorder.record(probe(1))
    recorder.record(probe(2, started_at=datetime(2025, 1, 1, 12, 0)))  # naive: a bug upstream
    recorder.record(probe(3))
    assert await recorder.flush() is True
    assert (recorder.written, recorder.rejected) == (2, 1)
    assert [row[0] for row in await stored(db_sessionmaker)] == ["provider-1", "provider-3"]
