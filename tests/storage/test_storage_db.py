"""The engine: SQLite pragmas, URL handling and timezone-aware timestamps on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import StatementError

from apiwatch.storage.db import create_engine, normalize_url, pool_options
from apiwatch.storage.models import Provider


async def test_sqlite_file_gets_its_directory_and_wal_pragmas(tmp_path):
    path = tmp_path / "nested" / "dir" / "apiwatch.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with engine.connect() as connection:

            async def pragma(name: str):
                return (await connection.exec_driver_sql(f"PRAGMA {name}")).scalar()

            assert await pragma("journal_mode") == "wal"
            assert await pragma("synchronous") == 1  # NORMAL
            assert await pragma("foreign_keys") == 1
            assert await pragma("busy_timeout") == 5000
        assert path.parent.is_dir()
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("sqlite:///data/x.db", "sqlite+aiosqlite:///data/x.db"),
        ("sqlite+aiosqlite:///data/x.db", "sqlite+aiosqlite:///data/x.db"),
    ],
)
def test_driverless_urls_get_the_async_driver(given, expected):
    assert normalize_url(given) == expected


async def test_timestamps_come_back_aware_utc_and_compare_with_aware_values(db_engine):
    local = datetime(2025, 3, 1, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    async with db_engine.begin() as connection:
        await connection.execute(
            insert(Provider.__table__),
            [{"id": "p", "name": "P", "category": "news", "base_url": "", "updated_at": local}],
        )
        stored = (await connection.execute(select(Provider.updated_at))).scalar_one()
        after = (
            await connection.execute(
                select(Provider.id).where(Provider.updated_at > local - timedelta(seconds=1))
            )
        ).all()
    assert stored == local
    assert stored.tzinfo == UTC
    assert stored.hour == 10
    assert after == [("p",)]


async def test_naive_datetime_is_refused_rather_than_guessed(db_engine):
    naive = datetime(2025, 3, 1, 12, 0)
    with pytest.raises(StatementError, match="naive datetime"):
        async with db_engine.begin() as connection:
            await connection.execute(
                insert(Provider.__table__),
                [{"id": "p", "name": "P", "category": "", "base_url": "", "updated_at": naive}],
            )


async def test_pool_sizes_apply_to_postgresql_and_leave_sqlite_alone(
    postgres_server_url: str, tmp_path
) -> None:
    assert pool_options(f"sqlite+aiosqlite:///{tmp_path}/x.db", 7, 3) == {}
    engine = create_engine(postgres_server_url, **pool_options(postgres_server_url, 7, 3))
    try:
        async with engine.connect() as connection:
            assert (await connection.exec_driver_sql("SELECT 1")).scalar_one() == 1
        assert engine.pool.size() == 7
        assert engine.pool._max_overflow == 3  # the pool has no public reader of it
    finally:
        await engine.dispose()
