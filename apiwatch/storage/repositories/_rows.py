"""Turning result rows into the plain dicts the repositories return."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, Table


def row_dict(row: Row[Any]) -> dict[str, Any]:
    return dict(row._mapping)


def columns(table: Table) -> list[Any]:
    """Every column of `table`, in declaration order, for `select(*columns(t))`."""
    return list(table.columns)
