"""Queries over `rate_limit_usage`, the periodic snapshots of every budget window."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from apiwatch.storage.models import RateLimitUsage

_C = RateLimitUsage.__table__.c


async def highest_used_since(
    session: AsyncSession, *, window: str, since: datetime
) -> dict[str, int]:
    """Per provider, the highest `used` snapshotted for `window` since `since` (the start of
    its current period): counted or reported by the provider, whichever was stored."""
    rows = await session.execute(
        select(_C.provider, func.max(_C.used))
        .where(_C.window == window, _C.recorded_at >= since)
        .group_by(_C.provider)
    )
    return {provider: int(used) for provider, used in rows if used is not None}
