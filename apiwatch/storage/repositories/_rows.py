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


async def upsert(
    session: AsyncSession,
    *,
    table: Table,
    rows: list[dict[str, Any]],
    key: str,
    updatable: Sequence[str],
) -> None:
    """INSERT … ON CONFLICT (key) DO UPDATE, then commit. Both dialects have the same shape;
    only the import differs."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        statement = pg_insert(table)
    elif dialect == "sqlite":
        statement = sqlite_insert(table)
    else:
        raise NotImplementedError(f"upsert does not support {dialect}")
    statement = statement.on_conflict_do_update(
        index_elements=[key], set_={name: statement.excluded[name] for name in updatable}
    )
    await session.execute(statement, rows)
    await session.commit()
