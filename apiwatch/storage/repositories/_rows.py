"""Shared by the repositories: plain dicts from rows, and one upsert for both dialects."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession


def row_dict(row: Row[Any]) -> dict[str, Any]:
    return dict(row._mapping)


def columns(table: Table) -> list[Any]:
    """Every column of `table`, in declaration order, for `select(*columns(t))`."""
    return list(table.columns)


def _dialect_insert(session: AsyncSession, table: Table) -> Any:
    """An INSERT that knows ON CONFLICT: both dialects have the same shape, only the import
    differs."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return pg_insert(table)
    if dialect == "sqlite":
        return sqlite_insert(table)
    raise NotImplementedError(f"upsert does not support {dialect}")


async def insert_missing(
    session: AsyncSession, *, table: Table, rows: list[dict[str, Any]], keys: Sequence[str]
) -> None:
    """INSERT … ON CONFLICT (keys) DO NOTHING, then commit: rows already there stay as they
    are, and processes seeding the same rows at once do not collide."""
    statement = _dialect_insert(session, table).on_conflict_do_nothing(index_elements=keys)
    await session.execute(statement, rows)
    await session.commit()


async def upsert(
    session: AsyncSession,
    *,
    table: Table,
    rows: list[dict[str, Any]],
    key: str,
    updatable: Sequence[str],
) -> None:
    """INSERT … ON CONFLICT (key) DO UPDATE, then commit."""
    statement = _dialect_insert(session, table)
    statement = statement.on_conflict_do_update(
        index_elements=[key], set_={name: statement.excluded[name] for name in updatable}
    )
    await session.execute(statement, rows)
    await session.commit()
