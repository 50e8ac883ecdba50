"""`alerts`, `alert_deliveries`, `silences` and `settings_overrides`: what alerting keeps.

Alerts are written here directly (not through the recorder) because the API returns their
ids and acknowledging needs the row at once; alert volume is small by design (dedup and
grouping happen before a row changes).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from apiwatch.domain import utcnow
from apiwatch.storage.models import Alert, AlertDelivery, SettingRow, Silence
from apiwatch.storage.repositories._rows import columns, row_dict, upsert

_A = Alert.__table__
_D = AlertDelivery.__table__
_S = Silence.__table__
_O = SettingRow.__table__


async def insert_alert(session: AsyncSession, *, row: dict[str, Any]) -> int:
    result = await session.execute(_A.insert().values(**row).returning(_A.c.id))
    alert_id = int(result.scalar_one())
    await session.commit()
    return alert_id


async def update_alert(session: AsyncSession, *, alert_id: int, values: dict[str, Any]) -> None:
    await session.execute(update(_A).where(_A.c.id == alert_id).values(**values))
    await session.commit()


async def get_alert(session: AsyncSession, *, alert_id: int) -> dict[str, Any] | None:
    row = (await session.execute(select(*columns(_A)).where(_A.c.id == alert_id))).first()
    return None if row is None else row_dict(row)


async def list_alerts(
    session: AsyncSession,
    *,
    state: str | None = None,
    severity: str | None = None,
    provider: str | None = None,
    rule: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    group_key: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Newest first, filtered by any of the arguments."""
    query = select(*columns(_A)).order_by(_A.c.fired_at.desc(), _A.c.id.desc())
    for column, value in (
        (_A.c.state, state),
        (_A.c.severity, severity),
        (_A.c.provider, provider),
        (_A.c.rule, rule),
        (_A.c.group_key, group_key),
    ):
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(_A.c.fired_at >= since)
    if until is not None:
        query = query.where(_A.c.fired_at < until)
    query = query.limit(limit).offset(offset)
    return [row_dict(row) for row in await session.execute(query)]


async def firing_alerts(session: AsyncSession) -> list[dict[str, Any]]:
    """Every alert still firing, oldest first: what the policy reloads after a restart."""
    query = select(*columns(_A)).where(_A.c.state == "firing").order_by(_A.c.id)
    return [row_dict(row) for row in await session.execute(query)]


async def insert_delivery(session: AsyncSession, *, row: dict[str, Any]) -> None:
    await session.execute(_D.insert().values(**row))
    await session.commit()


async def list_deliveries(
    session: AsyncSession, *, group_key: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    query = select(*columns(_D)).order_by(_D.c.at.desc(), _D.c.id.desc()).limit(limit)
    if group_key is not None:
        query = query.where(_D.c.group_key == group_key)
    return [row_dict(row) for row in await session.execute(query)]


async def create_silence(session: AsyncSession, *, row: dict[str, Any]) -> dict[str, Any]:
    result = await session.execute(
        _S.insert().values(**row, created_at=utcnow()).returning(_S.c.id)
    )
    silence_id = int(result.scalar_one())
    await session.commit()
    found = (await session.execute(select(*columns(_S)).where(_S.c.id == silence_id))).first()
    assert found is not None
    return row_dict(found)


async def list_silences(
    session: AsyncSession, *, active_at: datetime | None = None
) -> list[dict[str, Any]]:
    query = select(*columns(_S)).order_by(_S.c.id)
    if active_at is not None:
        query = query.where(_S.c.starts_at <= active_at, _S.c.ends_at > active_at)
    return [row_dict(row) for row in await session.execute(query)]


SilenceEnd = Literal["ended", "cancelled", "already_ended", "missing"]


async def end_silence(session: AsyncSession, *, silence_id: int, at: datetime) -> SilenceEnd:
    """End a silence at `at`. The row stays, with `ends_at` moved to `at`: silences are the
    record of maintenance, and the SLO figures exclude the time they covered, so deleting
    one would rewrite past uptime and budgets. A silence that has not started yet covered
    no time and is deleted ("cancelled"); one that has already ended is left as it is."""
    ended = await session.execute(
        _S.update()
        .where(_S.c.id == silence_id, _S.c.starts_at <= at, _S.c.ends_at > at)
        .values(ends_at=at)
    )
    if ended.rowcount:
        await session.commit()
        return "ended"
    cancelled = await session.execute(_S.delete().where(_S.c.id == silence_id, _S.c.starts_at > at))
    await session.commit()
    if cancelled.rowcount:
        return "cancelled"
    found = (await session.execute(select(_S.c.id).where(_S.c.id == silence_id))).first()
    return "missing" if found is None else "already_ended"


async def load_override(session: AsyncSession, *, name: str) -> dict[str, Any] | None:
    row = (await session.execute(select(_O.c.value).where(_O.c.name == name))).first()
    return None if row is None else dict(row.value)


async def save_override(session: AsyncSession, *, name: str, value: dict[str, Any]) -> None:
    await upsert(
        session,
        table=_O,
        rows=[{"name": name, "value": value, "updated_at": utcnow()}],
        key="name",
        updatable=("value", "updated_at"),
    )
