"""Hourly roll-ups: raw `connection_attempts` / `api_usage` rows summarized per series and
hour into `hourly_rollups`, kept after retention deletes the raw rows, and read back by
the charts and the SLO pages.

The summarizing SQL itself is in raw_summary.py (charts reuse it for the live hour); this
module writes its results down, backfills a database that has none, reads them back and
says from when on they cannot be trusted yet.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Text, func, null, select, type_coerce
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from apiwatch.domain import utcnow
from apiwatch.storage.models import ApiUsage, ConnectionAttempt, HourlyRollup
from apiwatch.storage.repositories.raw_summary import (
    HOUR,
    Kind,
    Ladder,
    Series,
    aggregate,
    ceil_to,
    floor_to,
)

# A probe is stored when it finishes, with its start time: one started at 10:59:50 with a
# long timeout lands after 11:00. A roll-up made this long after its hour ended is final.
SETTLE = timedelta(minutes=2)
# Roll-up rows written per statement (one transaction still holds the whole job).
ROWS_AT_ONCE = 1000

_ATT = ConnectionAttempt.__table__
_USE = ApiUsage.__table__
_ROLL = HourlyRollup.__table__


async def _upsert_rollups(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    # `_rows.upsert` takes a one-column key; this table's is (kind, subject, detail, hour).
    dialect = session.get_bind().dialect.name
    statement = (pg_insert if dialect == "postgresql" else sqlite_insert)(_ROLL)
    updatable = (
        "count",
        "errors",
        "latency_ms_sum",
        "latency_hist",
        "outcomes",
        "p50_ms",
        "p95_ms",
    )
    statement = statement.on_conflict_do_update(
        index_elements=["kind", "subject", "detail", "hour"],
        set_={name: statement.excluded[name] for name in (*updatable, "updated_at")},
    )
    await session.execute(statement, rows)


async def roll_up(
    session: AsyncSession,
    *,
    kind: Kind,
    start: datetime,
    end: datetime,
    ladder: Ladder,
    now: datetime | None = None,
) -> int:
    """(Re)compute the roll-ups of every whole hour touching [start, end) and commit.

    `start` rounds down and `end` up to the hour. Idempotent: a re-run over the same raw
    rows writes the same figures. Series without raw rows in an hour are left alone, so
    roll-ups outlive the raw rows that retention deletes. Returns the rows written.
    """
    first, last = floor_to(start, HOUR), ceil_to(end, HOUR)
    series = await aggregate(
        session, kind=kind, start=first, end=last, ladder=ladder, outcomes=kind == "probe"
    )
    stamp = now or utcnow()
    written = 0
    rows: list[dict[str, Any]] = []
    # Written a slice at a time, each series let go once its row is made: at 10,000
    # providers the job holds 20,000 series, and their rows all at once were a spike of
    # tens of MB every few minutes.
    for key in sorted(series):
        subject, detail, hour = key
        one = series.pop(key)
        hist = ladder.merge(one.hists)
        rows.append(
            {
                "kind": kind,
                "subject": subject,
                "detail": detail,
                "hour": hour,
                "count": one.count,
                "errors": one.errors,
                "latency_ms_sum": one.latency_ms_sum,
                "latency_hist": hist,
                "outcomes": one.outcomes,
                "p50_ms": ladder.percentile(hist, 0.50),
                "p95_ms": ladder.percentile(hist, 0.95),
                "updated_at": stamp,
            }
        )
        if len(rows) == ROWS_AT_ONCE or not series:
            await _upsert_rollups(session, rows)
            written += len(rows)
            rows = []
    await session.commit()
    return written


async def roll_up_recent(
    session: AsyncSession, *, kind: Kind, now: datetime, ladder: Ladder
) -> int:
    """Roll up the current and the previous hour: the job run every few minutes. The
    previous hour is redone so rows stored after it ended (long probes, recorder batches)
    are counted, and so its roll-up becomes final (`SETTLE`)."""
    current = floor_to(now, HOUR)
    return await roll_up(
        session, kind=kind, start=current - HOUR, end=current + HOUR, ladder=ladder, now=now
    )


async def backfill_if_new(
    session: AsyncSession, *, kind: Kind, now: datetime, ladder: Ladder
) -> int:
    """Roll up every stored raw row of `kind` when it has no roll-up at all yet, up to the
    previous hour (`roll_up_recent` does the rest); 0 when it has some or there are no rows."""
    c = _ROLL.c
    if await session.scalar(select(c.id).where(c.kind == kind).limit(1)) is not None:
        return 0
    table = _USE if kind == "api" else _ATT
    at = table.c.at if kind == "api" else table.c.started_at
    oldest = await session.scalar(select(func.min(at)))
    end = floor_to(now, HOUR) - HOUR
    if oldest is None or oldest >= end:
        return 0
    total = 0
    first = floor_to(oldest, HOUR)
    # A day at a time: each transaction stays small on a large database.
    while first < end:
        last = min(end, first + timedelta(days=1))
        total += await roll_up(session, kind=kind, start=first, end=last, ladder=ladder, now=now)
        first = last
    return total


async def rolled_up(
    session: AsyncSession,
    *,
    kind: Kind,
    start: datetime,
    end: datetime,
    subjects: Sequence[str] | None = None,
    detail: str | None = None,
    outcomes: bool = False,
    histograms: bool = True,
) -> list[tuple[str, str, datetime, Series]]:
    """Stored roll-ups with hour in [start, end), as (subject, detail, hour, figures). With
    `outcomes` the figures carry the checks per outcome (None on rows rolled up before they
    were kept); without, the column is not read at all. Without `histograms` the figures
    carry none and the latency histograms are not read."""
    c = _ROLL.c
    conditions = [c.kind == kind, c.hour >= start, c.hour < end]
    if subjects is not None:
        conditions.append(c.subject.in_(list(subjects)))
    if detail is not None:
        conditions.append(c.detail == detail)
    result = await session.execute(
        select(
            c.subject,
            c.detail,
            c.hour,
            c.count,
            c.errors,
            c.latency_ms_sum,
            # As text on SQLite, decoded below in one call: a 30-day chart reads thousands.
            type_coerce(c.latency_hist, Text()) if histograms else null(),
            c.outcomes if outcomes else null(),
        ).where(*conditions)
    )
    rows = result.all()
    if not histograms:
        return [
            (subject, detail_, hour, Series(count, errors, latency_ms_sum, [], by_outcome))
            for subject, detail_, hour, count, errors, latency_ms_sum, _, by_outcome in rows
        ]
    if rows and isinstance(rows[0][6], str):
        hists = json.loads("[" + ",".join(row[6] for row in rows) + "]")
    else:  # asyncpg decodes json columns itself
        hists = [row[6] for row in rows]
    return [
        (subject, detail_, hour, Series(count, errors, latency_ms_sum, [hist], by_outcome))
        for (subject, detail_, hour, count, errors, latency_ms_sum, _, by_outcome), hist in zip(
            rows, hists, strict=True
        )
    ]


async def rolled_up_totals(
    session: AsyncSession,
    *,
    kind: Kind,
    start: datetime,
    end: datetime,
    subjects: Sequence[str] | None = None,
) -> dict[tuple[str, str], Series]:
    """Stored roll-ups with hour in [start, end) summed per (subject, detail) in the
    database: counts only, one row per series however many hours the span holds."""
    c = _ROLL.c
    conditions = [c.kind == kind, c.hour >= start, c.hour < end]
    if subjects is not None:
        conditions.append(c.subject.in_(list(subjects)))
    result = await session.execute(
        select(
            c.subject, c.detail, func.sum(c.count), func.sum(c.errors), func.sum(c.latency_ms_sum)
        )
        .where(*conditions)
        .group_by(c.subject, c.detail)
    )
    return {
        (subject, detail): Series(int(count or 0), int(errors or 0), float(latency or 0.0))
        for subject, detail, count, errors, latency in result
    }


async def live_from(session: AsyncSession, *, kind: Kind, now: datetime) -> datetime:
    """Where stored roll-ups stop being trustworthy: the current hour, or the previous one
    when its roll-up was made before that hour had settled (or not made at all)."""
    current = floor_to(now, HOUR)
    previous = current - HOUR
    c = _ROLL.c
    oldest = await session.scalar(
        select(func.min(c.updated_at)).where(c.kind == kind, c.hour == previous)
    )
    if oldest is not None and oldest >= current + SETTLE:
        return current
    return previous
