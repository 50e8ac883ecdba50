"""`api_keys`: keys for apiwatch's own API. Only hashes are stored; the key is shown once.

Usage counters (`usage_count`, `last_used`) are added in batches from the usage stream, so a
request never waits on this table.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from apiwatch.domain import utcnow
from apiwatch.storage.models import ApiKey

_T = ApiKey.__table__
_C = _T.c
# Everything but the hash: listings never need it.
_PUBLIC = [column for column in _T.columns if column.name != "key_hash"]

LIMIT_FIELDS = ("minute_limit", "hour_limit", "day_limit")


async def create_key(
    session: AsyncSession,
    *,
    name: str,
    scope: str,
    key_hash: str,
    prefix: str,
    minute_limit: int | None = None,
    hour_limit: int | None = None,
    day_limit: int | None = None,
) -> dict[str, Any]:
    result = await session.execute(
        _T.insert()
        .values(
            name=name,
            scope=scope,
            key_hash=key_hash,
            prefix=prefix,
            active=True,
            minute_limit=minute_limit,
            hour_limit=hour_limit,
            day_limit=day_limit,
            usage_count=0,
            created_at=utcnow(),
        )
        .returning(_C.id)
    )
    key_id = result.scalar_one()
    await session.commit()
    created = await get_key(session, key_id=key_id)
    assert created is not None
    return created


async def get_key(session: AsyncSession, *, key_id: int) -> dict[str, Any] | None:
    row = (await session.execute(select(*_PUBLIC).where(_C.id == key_id))).first()
    return None if row is None else dict(row._mapping)


async def get_by_hash(session: AsyncSession, *, key_hash: str) -> dict[str, Any] | None:
    """One key with its hash, for a lookup the in-memory store missed."""
    row = (await session.execute(select(*_T.columns).where(_C.key_hash == key_hash))).first()
    return None if row is None else dict(row._mapping)


async def list_keys(session: AsyncSession) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in await session.execute(select(*_PUBLIC).order_by(_C.id))]


async def all_with_hashes(session: AsyncSession) -> list[dict[str, Any]]:
    """Every key with its hash, for the in-memory store the middleware reads."""
    return [dict(row._mapping) for row in await session.execute(select(*_T.columns))]


async def count_keys(session: AsyncSession, *, scope: str | None = None) -> int:
    query = select(func.count()).select_from(_T)
    if scope is not None:
        query = query.where(_C.scope == scope)
    return int((await session.execute(query)).scalar_one())


async def update_key(
    session: AsyncSession, *, key_id: int, changes: Mapping[str, Any]
) -> dict[str, Any] | None:
    """Set `active`, `name` and/or the limits (None clears an override to the default)."""
    allowed = {"active", "name", *LIMIT_FIELDS}
    values = {name: value for name, value in changes.items() if name in allowed}
    if values:
        await session.execute(update(_T).where(_C.id == key_id).values(**values))
        await session.commit()
    return await get_key(session, key_id=key_id)


async def delete_key(session: AsyncSession, *, key_id: int) -> bool:
    result = await session.execute(delete(_T).where(_C.id == key_id))
    await session.commit()
    return bool(result.rowcount)


async def add_usage(session: AsyncSession, *, usage: Mapping[int, tuple[int, datetime]]) -> None:
    """Add request counts and move `last_used` forward, per key id."""
    for key_id, (count, last_used) in usage.items():
        await session.execute(
            update(_T)
            .where(_C.id == key_id)
            .values(
                usage_count=_C.usage_count + count,
                last_used=func.coalesce(_C.last_used, last_used),
            )
        )
        # `last_used` only moves forward: a late batch must not set it back.
        await session.execute(
            update(_T).where(_C.id == key_id, _C.last_used < last_used).values(last_used=last_used)
        )
    await session.commit()
