"""Queries over `events`: rate-limit warnings, expired keys, breaker transitions, ...

Events are written by the recorder as `("events", {"kind", "provider", "data", "at"})`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from apiwatch.storage.models import EventRow
from apiwatch.storage.repositories._rows import columns, row_dict

_T = EventRow.__table__
_C = _T.c


async def list_events(
    session: AsyncSession,
    *,
    kind: str | None = None,
    provider: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Events, newest first (`at`, then id), optionally of one kind and/or one provider,
    and at or after `since` (inclusive). Each is {"id", "kind", "provider", "data", "at"}."""
    query = select(*columns(_T)).order_by(_C.at.desc(), _C.id.desc()).limit(limit)
    if kind is not None:
        query = query.where(_C.kind == kind)
    if provider is not None:
        query = query.where(_C.provider == provider)
    if since is not None:
        query = query.where(_C.at >= since)
    events = []
    for row in await session.execute(query):
        event = row_dict(row)
        if event["data"] is None:
            event["data"] = {}
        events.append(event)
    return events
