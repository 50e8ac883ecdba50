"""Bringing a database's schema to the latest migration, from the app or the CLI.

The Alembic config is built here in code, pointing at the packaged `migrations/` directory,
so upgrades work from an installed wheel with no alembic.ini on disk.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text

from apiwatch.storage.db import create_engine, normalize_url

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Any constant works; it only has to be the same in every apiwatch process.
_PG_MIGRATION_LOCK = 0x61706977  # "apiw"


def alembic_config(url: str) -> Config:
    """An Alembic config for `url`; usable with every `alembic.command` function."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Passed as an attribute, not a main option: the ini parser would treat a '%' in a
    # URL-encoded password as interpolation.
    config.attributes["url"] = normalize_url(url)
    return config


def _upgrade_on(connection: Connection, config: Config, revision: str) -> None:
    if connection.dialect.name == "postgresql":
        # Several workers may start at once; the lock makes the others wait and then find
        # nothing left to do. Released when the migration transaction ends.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def upgrade(url: str, *, revision: str = "head") -> None:
    """Migrate the database at `url` to `revision`. A no-op when already there, so it is
    safe to call on every start."""
    config = alembic_config(url)
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade_on, config, revision)
    finally:
        await engine.dispose()


def upgrade_sync(url: str, *, revision: str = "head") -> None:
    """`upgrade` for synchronous callers such as the CLI (not from inside a running loop)."""
    asyncio.run(upgrade(url, revision=revision))
