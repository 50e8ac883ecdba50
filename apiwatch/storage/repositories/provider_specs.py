"""The `provider_specs` and `provider_changes` tables: providers defined through the API and
the history of every change. A change and its history row are written in one transaction,
so the history never misses a change nor tells of one that did not happen."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from apiwatch.storage.models import ProviderChange, ProviderSpecRow
from apiwatch.storage.repositories._rows import columns, row_dict

_SPECS = ProviderSpecRow.__table__
_CHANGES = ProviderChange.__table__


async def list_specs(session: AsyncSession) -> list[dict[str, Any]]:
    """Every stored provider (id, spec, source, version, updated_by, updated_at), by id."""
    result = await session.execute(select(*columns(_SPECS)).order_by(_SPECS.c.id))
    return [row_dict(row) for row in result]


async def get_spec(session: AsyncSession, *, provider: str) -> dict[str, Any] | None:
    result = await session.execute(select(*columns(_SPECS)).where(_SPECS.c.id == provider))
    row = result.first()
    return row_dict(row) if row is not None else None


async def catalogue_version(session: AsyncSession) -> int:
    """The id of the newest change, 0 before any: it grows with every change, so a process
    that saw this number has seen every change up to it."""
    result = await session.execute(select(func.max(_CHANGES.c.id)))
    return int(result.scalar() or 0)


async def save_change(
    session: AsyncSession,
    *,
    provider: str,
    action: str,
    spec: dict[str, Any] | None,
    source: str,
    before: dict[str, Any] | None,
    diff: list[dict[str, Any]],
    key_id: int | None,
    key_name: str,
    at: datetime,
) -> int:
    """Store the provider's new spec (None deletes its row) and the history row, in one
    commit; the history row's id (the new catalogue version)."""
    who = f"{key_name} (key {key_id})" if key_id is not None else key_name
    if spec is None:
        await session.execute(delete(_SPECS).where(_SPECS.c.id == provider))
    else:
        current = await session.execute(select(_SPECS.c.version).where(_SPECS.c.id == provider))
        version = current.scalar()
        if version is None:
            await session.execute(
                _SPECS.insert().values(
                    id=provider,
                    spec=spec,
                    source=source,
                    version=1,
                    updated_by=who,
                    updated_at=at,
                )
            )
        else:
            await session.execute(
                update(_SPECS)
                .where(_SPECS.c.id == provider)
                .values(
                    spec=spec, source=source, version=version + 1, updated_by=who, updated_at=at
                )
            )
    result = await session.execute(
        _CHANGES.insert()
        .values(
            provider=provider,
            action=action,
            key_id=key_id,
            key_name=key_name,
            before=before,
            after=spec,
            diff=diff,
            at=at,
        )
        .returning(_CHANGES.c.id)
    )
    change_id = int(result.scalar_one())
    await session.commit()
    return change_id


async def list_changes(
    session: AsyncSession, *, provider: str, limit: int = 100
) -> list[dict[str, Any]]:
    """The provider's changes, newest first."""
    result = await session.execute(
        select(*columns(_CHANGES))
        .where(_CHANGES.c.provider == provider)
        .order_by(_CHANGES.c.id.desc())
        .limit(limit)
    )
    return [row_dict(row) for row in result]
