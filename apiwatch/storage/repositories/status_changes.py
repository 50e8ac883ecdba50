"""Queries over `status_changes`: the change log and the last known status per provider."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from apiwatch.storage.models import StatusChangeRow
from apiwatch.storage.repositories._rows import columns, row_dict

_T = StatusChangeRow.__table__
_C = _T.c


async def list_changes(
    session: AsyncSession, *, provider: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Status changes, newest first, optionally of one provider."""
    query = select(*columns(_T)).order_by(_C.changed_at.desc(), _C.id.desc()).limit(limit)
    if provider is not None:
        query = query.where(_C.provider == provider)
    return [row_dict(row) for row in await session.execute(query)]


async def latest_status(session: AsyncSession) -> dict[str, dict[str, Any]]:
    """Per provider, its newest change: {"status", "reason", "changed_at"}.

    What the monitor restores on start so a restart does not re-announce every status.
    """
    # Newest by time, then by id for changes recorded in the same instant.
    rank = (
        func.row_number()
        .over(partition_by=_C.provider, order_by=(_C.changed_at.desc(), _C.id.desc()))
        .label("rank")
    )
    ranked = select(_C.provider, _C.new_status, _C.reason, _C.changed_at, rank).subquery()
    result = await session.execute(
        select(ranked.c.provider, ranked.c.new_status, ranked.c.reason, ranked.c.changed_at)
        .where(ranked.c.rank == 1)
        .order_by(ranked.c.provider)
    )
    return {
        provider: {"status": status, "reason": reason, "changed_at": changed_at}
        for provider, status, reason, changed_at in result
    }
