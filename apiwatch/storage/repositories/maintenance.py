"""`maintenance_windows`: the maintenance windows created through the API. Rows are plain
dicts; what a window means (matching, recurrence) is `alerting.maintenance`'s."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from apiwatch.domain import utcnow
from apiwatch.storage.models import MaintenanceWindowRow
from apiwatch.storage.repositories._rows import columns, row_dict

_M = MaintenanceWindowRow.__table__


async def _get(session: AsyncSession, window_id: int) -> dict[str, Any] | None:
    found = (await session.execute(select(*columns(_M)).where(_M.c.id == window_id))).first()
    return None if found is None else row_dict(found)


async def create_window(session: AsyncSession, *, row: dict[str, Any]) -> dict[str, Any]:
    now = utcnow()
    result = await session.execute(
        _M.insert().values(**row, created_at=now, updated_at=now).returning(_M.c.id)
    )
    window_id = int(result.scalar_one())
    await session.commit()
    found = await _get(session, window_id)
    assert found is not None
    return found


async def list_windows(session: AsyncSession) -> list[dict[str, Any]]:
    query = select(*columns(_M)).order_by(_M.c.id)
    return [row_dict(row) for row in await session.execute(query)]


async def get_window(session: AsyncSession, *, window_id: int) -> dict[str, Any] | None:
    return await _get(session, window_id)


async def replace_window(
    session: AsyncSession, *, window_id: int, row: dict[str, Any]
) -> dict[str, Any] | None:
    """Every definition field of the window set to `row`'s; None when there is no such."""
    result = await session.execute(
        _M.update().where(_M.c.id == window_id).values(**row, updated_at=utcnow())
    )
    await session.commit()
    return await _get(session, window_id) if result.rowcount else None


async def delete_window(session: AsyncSession, *, window_id: int) -> bool:
    result = await session.execute(_M.delete().where(_M.c.id == window_id))
    await session.commit()
    return bool(result.rowcount)
