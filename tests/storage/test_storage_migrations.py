"""Migrations: `upgrade` runs on every start without harm, and yields exactly the models."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from apiwatch.storage.db import create_engine
from apiwatch.storage.migrate import alembic_config, upgrade
from apiwatch.storage.models import Base


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


async def test_upgrade_twice_is_a_no_op_the_second_time(db_url):
    await upgrade(db_url)
    await upgrade(db_url)
    tables, revision, _ = await _schema_state(db_url)
    assert revision == _head() == "0003"
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables


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
    assert revision == _head() == "0003"
    assert differences == []
