"""Migrations: `upgrade` runs on every start without harm, yields exactly the models, and
keeps the rows of a database upgraded from the previous revision."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import insert, inspect, select, text

from apiwatch.storage.db import create_engine, create_sessionmaker
from apiwatch.storage.migrate import HEAD, alembic_config, upgrade
from apiwatch.storage.models import TABLES, Base
from apiwatch.storage.repositories import rollups
from apiwatch.storage.repositories.raw_summary import HOUR

ROLLUPS = TABLES["hourly_rollups"]
LEGACY_ROW = {
    "kind": "probe",
    "subject": "binance",
    "detail": "",
    "count": 4,
    "errors": 1,
    "latency_ms_sum": 40.0,
    "latency_hist": [4],
    "p50_ms": 10.0,
    "p95_ms": 10.0,
    "updated_at": datetime.fromisoformat("2026-12-01T00:00:00+00:00"),
}


def _head() -> str:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


async def _schema_state(url: str) -> tuple[set[str], str | None, list]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:

            def inspect_sync(sync_connection):
                tables = set(inspect(sync_connection).get_table_names())
                context = MigrationContext.configure(sync_connection, opts={"compare_type": True})
                return (
                    tables,
                    context.get_current_revision(),
                    compare_metadata(context, Base.metadata),
                )

            return await connection.run_sync(inspect_sync)
    finally:
        await engine.dispose()


async def _downgrade(url: str, revision: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            config = alembic_config(url)

            def downgrade(sync_connection):
                config.attributes["connection"] = sync_connection
                command.downgrade(config, revision)

            await connection.run_sync(downgrade)
    finally:
        await engine.dispose()


async def test_upgrade_twice_is_a_no_op_the_second_time(db_url):
    await upgrade(db_url)
    await upgrade(db_url)
    tables, revision, _ = await _schema_state(db_url)
    assert revision == _head() == HEAD
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables


# Run in a fresh interpreter: this one has imported Alembic already.
_UPGRADE_AND_SAY_IF_ALEMBIC_CAME = """
import sys
from apiwatch.storage.migrate import upgrade_sync
upgrade_sync(sys.argv[1])
print("alembic" in sys.modules, "mako" in sys.modules)
"""


def _upgrade_elsewhere(url: str) -> str:
    command = [sys.executable, "-c", _UPGRADE_AND_SAY_IF_ALEMBIC_CAME, url]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


async def test_a_database_at_the_head_is_upgraded_without_importing_alembic(db_url):
    """What every start of a server does; Alembic stays out of its memory."""
    await upgrade(db_url)
    await _downgrade(db_url, "0009")
    assert _upgrade_elsewhere(db_url) == "True True"  # one migration to run: Alembic runs it
    _, revision, _ = await _schema_state(db_url)
    assert revision == HEAD
    assert _upgrade_elsewhere(db_url) == "False False"
    _, revision, differences = await _schema_state(db_url)
    assert revision == HEAD and differences == []


async def test_upgraded_schema_matches_the_models(db_url):
    await upgrade(db_url)
    _, _, differences = await _schema_state(db_url)
    assert differences == []


async def test_downgrade_to_base_removes_every_table_and_upgrade_restores_them(db_url):
    await upgrade(db_url)
    engine = create_engine(db_url)
    try:
        async with engine.begin() as connection:
            config = alembic_config(db_url)

            def downgrade(sync_connection):
                config.attributes["connection"] = sync_connection
                command.downgrade(config, "base")

            await connection.run_sync(downgrade)
            count = (
                await connection.execute(text("SELECT count(*) FROM alembic_version"))
            ).scalar_one()
        assert count == 0
    finally:
        await engine.dispose()
    tables, revision, _ = await _schema_state(db_url)
    assert revision is None
    assert not set(Base.metadata.tables) & tables

    await upgrade(db_url)
    _, revision, differences = await _schema_state(db_url)
    assert revision == _head() == HEAD
    assert differences == []


async def test_upgrade_from_0005_keeps_roll_ups_and_reads_them_without_outcomes(db_url):
    await _downgrade(db_url, "base")
    await upgrade(db_url, revision="0005")
    hour = datetime.fromisoformat("2026-11-30T10:00:00+00:00")
    engine = create_engine(db_url)
    try:
        async with engine.begin() as connection:
            # Only the columns before 0006: a Core insert names just the columns it is given.
            await connection.execute(insert(ROLLUPS), [LEGACY_ROW | {"hour": hour}])
        await upgrade(db_url)
        _, revision, differences = await _schema_state(db_url)
        assert (revision, differences) == (_head(), [])
        async with engine.connect() as connection:
            (row,) = (await connection.execute(select(ROLLUPS))).all()
        assert (row.count, row.errors, row.outcomes) == (4, 1, None)
        async with create_sessionmaker(engine)() as session:
            [(_s, _d, at, figures)] = await rollups.rolled_up(
                session, kind="probe", start=hour, end=hour + HOUR, outcomes=True
            )
        assert (at, figures.count, figures.errors, figures.outcomes) == (hour, 4, 1, None)
        async with engine.begin() as connection:
            await connection.execute(
                insert(ROLLUPS),
                [LEGACY_ROW | {"hour": hour + HOUR, "outcomes": {"ok": 3}}],
            )
        # Back to 0005: the column goes, the rows stay.
        await _downgrade(db_url, "0005")
        async with engine.connect() as connection:
            count = (await connection.execute(text("SELECT count(*) FROM hourly_rollups"))).scalar()
        assert count == 2
    finally:
        await engine.dispose()
    await upgrade(db_url)
