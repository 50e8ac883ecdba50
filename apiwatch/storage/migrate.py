"""Bringing a database's schema to the latest migration, from the app or the CLI.

The Alembic config is built here in code, pointing at the packaged `migrations/` directory,
so upgrades work from an installed wheel with no alembic.ini on disk.

A database already at the newest migration needs nothing from Alembic: `upgrade` reads its
revision first and imports Alembic only when there is something to do. Every server start
calls `upgrade`, and Alembic with its templating costs about 10 MB resident for the life of
the process.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text

from apiwatch.storage.db import create_engine, normalize_url

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# The newest revision in `migrations/versions` (a test holds it to Alembic's own head).
HEAD = "0010"

# Any constant works; it only has to be the same in every apiwatch process.
_PG_MIGRATION_LOCK = 0x61706977  # "apiw"


def alembic_config(url: str) -> Config:
    """An Alembic config for `url`; usable with every `alembic.command` function."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Passed as an attribute, not a main option: the ini parser would treat a '%' in a
    # URL-encoded password as interpolation.
    config.attributes["url"] = normalize_url(url)
    return config


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at, read without Alembic; None before the first."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _upgrade_on(connection: Connection, url: str, revision: str) -> None:
    if revision in ("head", HEAD) and current_revision(connection) == HEAD:
        return
    from alembic import command

    config = alembic_config(url)
    if connection.dialect.name == "postgresql":
        # Several workers may start at once; the lock makes the others wait and then find
        # nothing left to do. Released when the migration transaction ends.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def upgrade(url: str, *, revision: str = "head") -> None:
    """Migrate the database at `url` to `revision`. A no-op when already there, so it is
    safe to call on every start."""
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade_on, url, revision)
    finally:
        await engine.dispose()


def upgrade_sync(url: str, *, revision: str = "head") -> None:
    """`upgrade` for synchronous callers such as the CLI (not from inside a running loop)."""
    asyncio.run(upgrade(url, revision=revision))
