"""Retention: raw rows older than the retention period are deleted; the hourly roll-ups
(and alerts, schedules, keys) stay, so charts keep their history while the database stays
small (docs/operations.md)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from apiwatch.storage.models import (
    AlertDelivery,
    ApiRefusal,
    ApiUsage,
    ConnectionAttempt,
    DataCollection,
    EventRow,
    RateLimitUsage,
    ScheduleCompliance,
    StatusChangeRow,
)

# (model, its time column). The purge runs once an hour; where no index leads with the
# time column it scans, which is affordable at that rate.
RAW_TABLES = (
    (ConnectionAttempt, ConnectionAttempt.started_at),
    (ApiUsage, ApiUsage.at),
    (ApiRefusal, ApiRefusal.minute),
    (DataCollection, DataCollection.fetched_at),
    (ScheduleCompliance, ScheduleCompliance.planned_at),
    (RateLimitUsage, RateLimitUsage.recorded_at),
    (EventRow, EventRow.at),
    (AlertDelivery, AlertDelivery.at),
    (StatusChangeRow, StatusChangeRow.changed_at),
)


async def purge(session: AsyncSession, *, before: datetime) -> dict[str, int]:
    """Delete raw rows older than `before`; returns rows deleted per table."""
    deleted: dict[str, int] = {}
    for model, column in RAW_TABLES:
        result = await session.execute(delete(model).where(column < before))
        deleted[model.__tablename__] = int(result.rowcount or 0)
    await session.commit()
    return deleted
