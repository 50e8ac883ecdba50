"""What the inbound page reads about refused requests: `api_refusals` summed per reason
(with its status), per minute or hour and reason, and per client network, over a range.

The rows are already counted per minute (one per minute, status, reason and network), so
these sums read a few rows per minute at most, never one per request. Groups not stored
yet (the current minute, held in memory by the process that refused them) are passed in as
`pending` rows of the same shape and added here, so a refusal shows at once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from apiwatch.storage.models import ApiRefusal
from apiwatch.storage.repositories.raw_summary import (
    HOUR,
    ceil_to,
    floor_to,
    parse_truncated,
    truncated,
)

Bucket = Literal["minute", "hour"]
MINUTE = timedelta(minutes=1)
STEPS: dict[Bucket, timedelta] = {"minute": MINUTE, "hour": HOUR}
# Networks listed, most refused first; the database is asked for a few more than that so
# the groups still in memory can reorder the top.
TOP_NETWORKS = 10
_NETWORKS_READ = 100

_C = ApiRefusal.__table__.c


async def refusal_summary(
    session: AsyncSession,
    *,
    start: datetime,
    end: datetime,
    bucket: Bucket,
    pending: Iterable[dict[str, Any]] = (),
) -> dict[str, Any]:
    """Refusals over the whole buckets touching [start, end).

    Returns `start` and `end` (the buckets covered), `bucket`, `total`, `by_reason` (reason,
    status, count; most first), `series` (t, reason, count per bucket with any; in time
    order) and `networks` (client_prefix, count; the `TOP_NETWORKS` most refused).
    """
    if start >= end:
        raise ValueError(f"start ({start.isoformat()}) must be before end ({end.isoformat()})")
    step = STEPS[bucket]
    first, last = floor_to(start, step), ceil_to(end, step)
    in_range = (_C.minute >= first, _C.minute < last)
    dialect = session.get_bind().dialect.name
    slot = _C.minute if bucket == "minute" else truncated(_C.minute, dialect, "hour")

    by_reason: Counter[tuple[str, int]] = Counter()
    series: Counter[tuple[datetime, str]] = Counter()
    query = (
        select(slot.label("slot"), _C.reason, _C.status, func.sum(_C.count))
        .where(*in_range)
        .group_by(slot, _C.reason, _C.status)
    )
    for at, reason, status, count in await session.execute(query):
        t = at if bucket == "minute" else parse_truncated(at)
        by_reason[reason, int(status)] += int(count)
        series[t, reason] += int(count)

    networks: Counter[str] = Counter()
    total_network = func.sum(_C.count)
    query = (
        select(_C.client_prefix, total_network)
        .where(*in_range)
        .group_by(_C.client_prefix)
        .order_by(total_network.desc(), _C.client_prefix)
        .limit(_NETWORKS_READ)
    )
    for network, count in await session.execute(query):
        networks[network] += int(count)

    for row in pending:
        minute = row["minute"]
        if not first <= minute < last:
            continue
        count = int(row["count"])
        by_reason[row["reason"], int(row["status"])] += count
        series[floor_to(minute, step), row["reason"]] += count
        networks[row["client_prefix"]] += count

    return {
        "start": first,
        "end": last,
        "bucket": bucket,
        "total": sum(by_reason.values()),
        "by_reason": [
            {"reason": reason, "status": status, "count": count}
            for (reason, status), count in sorted(
                by_reason.items(), key=lambda item: (-item[1], item[0])
            )
        ],
        "series": [
            {"t": t, "reason": reason, "count": count}
            for (t, reason), count in sorted(series.items())
        ],
        "networks": [
            {"client_prefix": network, "count": count}
            for network, count in sorted(networks.items(), key=lambda item: (-item[1], item[0]))[
                :TOP_NETWORKS
            ]
        ],
    }
