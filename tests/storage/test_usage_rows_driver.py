"""Usage rows go through the driver's executemany (`storage.driver_insert`), on SQLite and
PostgreSQL: every row stored, read back exactly as SQLAlchemy's own insert stores it
(aware timestamps in UTC, booleans, NULLs), and a bad row rejected alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import insert, select

from apiwatch.storage.driver_insert import prepare
from apiwatch.storage.models import TABLES, ApiUsage
from apiwatch.storage.recorder import Recorder

T0 = datetime(2025, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
COLUMNS = ("key_id", "key_name", "route", "method", "status", "latency_ms", "client")


def usage(i: int, **changes: object) -> tuple[str, dict[str, object]]:
    row: dict[str, object] = {
        "key_id": i,
        "key_name": f"key-{i}",
        "route": "/api/items/{item_id}",
        "method": "GET",
        "status": 200 + i % 3,
        "latency_ms": 1.5 * i,
        "client": "127.0.0.1",
        "authorized": i % 2 == 0,
        # Offsets other than UTC are stored as the same instant in UTC.
        "at": (T0 + timedelta(seconds=i)).astimezone(timezone(timedelta(hours=2))),
    }
    row.update(changes)
    return ("api_usage", row)


async def stored(sessionmaker) -> list[tuple[object, ...]]:
    async with sessionmaker() as session:
        rows = (await session.scalars(select(ApiUsage).order_by(ApiUsage.id))).all()
    return [(*(getattr(r, c) for c in COLUMNS), r.authorized, r.at) for r in rows]


async def test_usage_rows_are_stored_as_sqlalchemys_insert_stores_them(db_sessionmaker):
    recorder = Recorder(db_sessionmaker)
    items = [usage(i) for i in range(1, 6)]
    items.append(usage(6, key_id=None, key_name=None, client=None))
    for item in items:
        recorder.record(item)
    assert await recorder.flush() is True
    assert (recorder.written, recorder.batches, recorder.rejected) == (6, 1, 0)
    through_driver = await stored(db_sessionmaker)

    async with db_sessionmaker() as session, session.begin():
        connection = await session.connection()
        assert prepare(TABLES["api_usage"], frozenset(items[0][1]), connection.dialect)
        await connection.execute(insert(TABLES["api_usage"]), [row for _, row in items])
    both = await stored(db_sessionmaker)
    assert both[6:] == through_driver == both[:6]
    assert through_driver[0] == (
        1,
        "key-1",
        "/api/items/{item_id}",
        "GET",
        201,
        1.5,
        "127.0.0.1",
        False,
        T0 + timedelta(seconds=1),
    )
    assert through_driver[0][-1].tzinfo is not None
    assert through_driver[5][0] is None and through_driver[5][6] is None


async def test_a_naive_timestamp_is_rejected_alone_and_the_batch_is_written(db_sessionmaker):
    recorder = Recorder(db_sessionmaker)
    recorder.record(usage(1))
    recorder.record(usage(2, at=datetime(2025, 1, 1, 12, 0)))  # naive: a bug upstream
    recorder.record(usage(3))
    assert await recorder.flush() is True
    assert (recorder.written, recorder.rejected) == (2, 1)
    assert [row[0] for row in await stored(db_sessionmaker)] == [1, 3]


def test_a_table_whose_missing_columns_have_python_defaults_keeps_sqlalchemys_insert() -> None:
    from sqlalchemy import Column, Integer, MetaData, String, Table
    from sqlalchemy.dialects import sqlite

    table = Table(
        "t",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("a", Integer),
        Column("b", String, default="x"),
    )
    assert prepare(table, frozenset({"a"}), sqlite.dialect()) is None
    prepared = prepare(table, frozenset({"a", "b"}), sqlite.dialect())
    assert prepared is not None
    assert prepared.names == ("a", "b")
    assert prepared.values([{"a": 1, "b": "y"}]) == [(1, "y")]


async def test_a_large_batch_is_stored_whole_and_in_order(db_sessionmaker):
    # On SQLite rows go 100 to a statement: two full statements and a remainder here.
    recorder = Recorder(db_sessionmaker, batch_size=1000)
    for i in range(1, 251):
        recorder.record(usage(i))
    assert await recorder.flush() is True
    assert (recorder.written, recorder.batches) == (250, 1)
    rows = await stored(db_sessionmaker)
    assert [row[0] for row in rows] == list(range(1, 251))
    assert rows[149] == (
        150,
        "key-150",
        "/api/items/{item_id}",
        "GET",
        200,
        225.0,
        "127.0.0.1",
        True,
        T0 + timedelta(seconds=150),
    )
