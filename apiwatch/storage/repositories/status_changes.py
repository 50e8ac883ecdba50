"""Queries over `status_changes`: the change log and the last known status per provider."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
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


async def changes_since(
    session: AsyncSession, *, providers: Sequence[str], since: datetime
) -> list[dict[str, Any]]:
    """The named providers' changes from `since` on, oldest first, with each provider's last
    change before `since` (so an incident already under way at `since` is seen)."""
    if not providers:
        return []
    names = list(providers)
    query = (
        select(*columns(_T))
        .where(_C.provider.in_(names), _C.changed_at >= since)
        .order_by(_C.changed_at, _C.id)
    )
    rows = [row_dict(row) for row in await session.execute(query)]
    rank = (
        func.row_number()
        .over(partition_by=_C.provider, order_by=(_C.changed_at.desc(), _C.id.desc()))
        .label("rank")
    )
    before = (
        select(*columns(_T), rank).where(_C.provider.in_(names), _C.changed_at < since).subquery()
    )
    earlier = await session.execute(
        select(*[before.c[col.name] for col in _T.columns]).where(before.c.rank == 1)
    )
    return sorted(
        [row_dict(row) for row in earlier] + rows, key=lambda r: (r["changed_at"], r["id"])
    )


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
