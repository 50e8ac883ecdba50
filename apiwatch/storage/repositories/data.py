"""Queries over `data_collections`: the latest point per provider and item, and which news
urls were already stored (news is de-duplicated by url across runs).

Rows are written by the recorder as `("data_collections", {...})`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from apiwatch.storage.models import DataCollection
from apiwatch.storage.repositories._rows import columns, row_dict

_T = DataCollection.__table__
_C = _T.c


async def latest_points(
    session: AsyncSession, *, since: datetime, exclude_prefix: str = "news:"
) -> list[dict[str, Any]]:
    """The newest row per (provider, item) fetched at or after `since`, news items excluded
    (there is one per article; freshness of news is judged per run instead)."""
    newest = (
        select(_C.provider, _C.item, func.max(_C.id).label("id"))
        .where(_C.fetched_at >= since, ~_C.item.startswith(exclude_prefix))
        .group_by(_C.provider, _C.item)
        .subquery()
    )
    query = select(*columns(_T)).join(newest, _C.id == newest.c.id).order_by(_C.provider, _C.item)
    return [row_dict(row) for row in await session.execute(query)]


async def known_items(session: AsyncSession, *, items: Iterable[str]) -> set[str]:
    """Which of `items` (e.g. `news:<url>`) are already stored, by any provider."""
    wanted = list(dict.fromkeys(items))
    found: set[str] = set()
    # Chunked: PostgreSQL and SQLite cap the parameters of one statement.
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        found.update(
            row.item for row in await session.execute(select(_C.item).where(_C.item.in_(chunk)))
        )
    return found


async def list_points(
    session: AsyncSession,
    *,
    provider: str | None = None,
    item: str | None = None,
    category: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Newest first, optionally filtered."""
    query = select(*columns(_T)).order_by(_C.fetched_at.desc(), _C.id.desc()).limit(limit)
    if provider is not None:
        query = query.where(_C.provider == provider)
    if item is not None:
        query = query.where(_C.item == item)
    if category is not None:
        query = query.where(_C.category == category)
    return [row_dict(row) for row in await session.execute(query)]
