"""`schedule_config` (interval and enabled per provider and category) and the compliance
summary over `schedule_compliance` that `GET /api/schedule` and `/api/categories` show.

Compliance rows are written by the recorder as `("schedule_compliance", {...})`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from apiwatch.domain import utcnow
from apiwatch.storage.models import ScheduleCompliance, ScheduleConfig
from apiwatch.storage.repositories._rows import columns, insert_missing, row_dict

_CFG = ScheduleConfig.__table__
_CMP = ScheduleCompliance.__table__


async def seed_schedules(session: AsyncSession, *, defaults: list[dict[str, Any]]) -> None:
    """Insert a row per (provider, category) that has none; existing rows (user edits) stay,
    and several workers starting at once on one database seed each row once.

    Each default is {"provider", "category", "interval_s", "enabled"}."""
    if not defaults:
        return
    now = utcnow()
    rows = [{**default, "updated_at": now} for default in defaults]
    await insert_missing(session, table=_CFG, rows=rows, keys=("provider", "category"))


async def list_schedules(session: AsyncSession) -> list[dict[str, Any]]:
    result = await session.execute(
        select(*columns(_CFG)).order_by(_CFG.c.category, _CFG.c.provider)
    )
    return [row_dict(row) for row in result]


async def get_schedule(session: AsyncSession, *, schedule_id: int) -> dict[str, Any] | None:
    row = (await session.execute(select(*columns(_CFG)).where(_CFG.c.id == schedule_id))).first()
    return None if row is None else row_dict(row)


async def update_schedule(
    session: AsyncSession,
    *,
    schedule_id: int,
    interval_s: float | None = None,
    enabled: bool | None = None,
) -> dict[str, Any] | None:
    """Change a schedule's interval and/or enabled flag; returns the row, None if unknown."""
    values: dict[str, Any] = {"updated_at": utcnow()}
    if interval_s is not None:
        values["interval_s"] = interval_s
    if enabled is not None:
        values["enabled"] = enabled
    await session.execute(update(_CFG).where(_CFG.c.id == schedule_id).values(**values))
    await session.commit()
    return await get_schedule(session, schedule_id=schedule_id)


async def compliance_summary(
    session: AsyncSession, *, since: datetime
) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (provider, category) since `since`: planned, on_time, late, skipped, compliance %,
    skip reasons with counts, and the last planned run."""
    query = (
        select(
            _CMP.c.provider,
            _CMP.c.category,
            _CMP.c.result,
            _CMP.c.reason,
            func.count().label("n"),
            func.max(_CMP.c.planned_at).label("last_planned"),
        )
        .where(_CMP.c.planned_at >= since)
        .group_by(_CMP.c.provider, _CMP.c.category, _CMP.c.result, _CMP.c.reason)
    )
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for row in await session.execute(query):
        entry = out.setdefault(
            (row.provider, row.category),
            {"planned": 0, "on_time": 0, "late": 0, "skipped": 0, "skip_reasons": {}},
        )
        entry["planned"] += row.n
        if row.result in ("on_time", "late", "skipped"):
            entry[row.result] += row.n
        if row.result == "skipped":
            reason = row.reason or "unknown"
            entry["skip_reasons"][reason] = entry["skip_reasons"].get(reason, 0) + row.n
    for entry in out.values():
        # Runs skipped because the user disabled the schedule were not due: they do not
        # count against compliance.
        due = entry["planned"] - entry["skip_reasons"].get("disabled", 0)
        entry["compliance_pct"] = round(100.0 * entry["on_time"] / due, 2) if due else None
    return out


async def last_runs(
    session: AsyncSession, *, since: datetime
) -> dict[tuple[str, str], dict[str, Any]]:
    """The latest compliance row per (provider, category) planned at or after `since` (the
    bound keeps this on the (provider, planned_at) index instead of a whole-table scan)."""
    latest = (
        select(_CMP.c.provider, _CMP.c.category, func.max(_CMP.c.id).label("id"))
        .where(_CMP.c.planned_at >= since)
        .group_by(_CMP.c.provider, _CMP.c.category)
        .subquery()
    )
    query = select(*columns(_CMP)).join(latest, _CMP.c.id == latest.c.id)
    return {(row.provider, row.category): row_dict(row) for row in await session.execute(query)}
