"""What the charts and usage views read: health history per provider, schedule compliance per
category, API usage per key and route.

Hours that have settled come from `hourly_rollups` (a few rows per series and hour, however
many raw rows there were); the current hour, and the previous one until its roll-up is
final, are summarized live from the raw rows, so the figures are current without reading
millions of rows. Buckets are whole: aligned on the Unix epoch (UTC; days start at UTC
midnight), the first one starts at or before `start`, and every bucket that starts before
`end` is included.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import case, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from apiwatch.storage.models import HourlyRollup, ScheduleCompliance
from apiwatch.storage.repositories.raw_summary import (
    HOUR,
    Kind,
    Ladder,
    Series,
    aggregate,
    ceil_to,
    floor_to,
    parse_truncated,
    truncated,
)
from apiwatch.storage.repositories.rollups import live_from, rolled_up

_CMP = ScheduleCompliance.__table__
_ROLL = HourlyRollup.__table__
DAY = timedelta(days=1)
_RESULTS = ("on_time", "late", "skipped")


def _check_span(start: datetime, end: datetime) -> None:
    if start >= end:
        raise ValueError(f"start ({start.isoformat()}) must be before end ({end.isoformat()})")


async def hourly_series(
    session: AsyncSession,
    *,
    kind: Kind,
    start: datetime,
    end: datetime,
    now: datetime,
    ladder: Ladder,
    subjects: Sequence[str] | None = None,
    detail: str | None = None,
    outcomes: bool = False,
    histograms: bool = True,
) -> list[tuple[str, str, datetime, Series]]:
    """(subject, detail, hour, figures) for every series and hour in [start, end): settled
    hours from the roll-ups, the others live from raw rows. `outcomes` (probe series only)
    adds the checks per outcome; None on hours rolled up before they were kept. Without
    `histograms`, counts only (see `aggregate`)."""
    out: list[tuple[str, str, datetime, Series]] = []
    # Only a window reaching the previous hour needs to know whether its roll-up is final.
    live = floor_to(now, HOUR) - HOUR
    if end > live:
        live = await live_from(session, kind=kind, now=now)
    stored_end = min(end, live)
    if start < stored_end:
        out = await rolled_up(
            session,
            kind=kind,
            start=start,
            end=stored_end,
            subjects=subjects,
            detail=detail,
            outcomes=outcomes,
            histograms=histograms,
        )
    live_start = max(start, live)
    if live_start < end:
        fresh = await aggregate(
            session,
            kind=kind,
            start=live_start,
            end=end,
            ladder=ladder,
            subjects=subjects,
            detail=detail,
            outcomes=outcomes,
            histograms=histograms,
        )
        out.extend((subject, det, hour, figures) for (subject, det, hour), figures in fresh.items())
    return out


async def health_history(
    session: AsyncSession,
    *,
    start: datetime,
    end: datetime,
    bucket: timedelta,
    providers: Sequence[str] | None,
    now: datetime,
    ladder: Ladder,
) -> list[dict[str, Any]]:
    """Per provider and bucket: `provider`, `bucket_start`, `requests`, `errors`,
    `success_rate` (0..1), `avg_ms`, `p50_ms`, `p95_ms` (see `apiwatch.analysis.rollups` for
    what counts and how exact the percentiles are). Only buckets with requests appear;
    sorted by provider, then time. `bucket` is a whole number of hours."""
    if bucket <= timedelta(0) or bucket % HOUR:
        raise ValueError(f"bucket must be a positive whole number of hours, got {bucket}")
    _check_span(start, end)
    first = floor_to(start, bucket)
    hours = await hourly_series(
        session,
        kind="probe",
        start=first,
        end=ceil_to(end, HOUR),
        now=now,
        ladder=ladder,
        subjects=providers,
    )
    points: dict[tuple[str, datetime], Series] = {}
    for provider, _detail, hour, figures in hours:
        slot = first + (hour - first) // bucket * bucket
        point = points.setdefault((provider, slot), Series())
        point.absorb(figures)
    return [
        {"provider": provider, "bucket_start": slot, **point.summary(ladder)}
        for (provider, slot), point in sorted(points.items())
    ]


async def compliance(
    session: AsyncSession,
    *,
    start: datetime,
    end: datetime,
    bucket: Literal["hour", "day"],
    categories: Sequence[str] | None,
    providers: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Per category and hour or day of `planned_at`: `category`, `bucket_start`, `planned`,
    `on_time`, `late`, `skipped`, `compliance_pct` (100 * on time / planned; a skipped run is
    not on time). Only buckets with planned runs appear; sorted by category, then time.

    With `providers`, only their runs, counted per provider as well: each point also has
    `provider`, and they sort by category, provider, then time.

    Read straight from `schedule_compliance`: one row per planned run is small enough, and
    (category, planned_at) and (provider, planned_at) are indexed.
    """
    if bucket not in ("hour", "day"):
        raise ValueError(f"bucket must be 'hour' or 'day', got {bucket!r}")
    _check_span(start, end)
    dialect = session.get_bind().dialect.name
    c = _CMP.c
    conditions = [c.planned_at >= floor_to(start, HOUR if bucket == "hour" else DAY)]
    conditions.append(c.planned_at < end)
    if categories is not None:
        conditions.append(c.category.in_(list(categories)))
    if providers is not None:
        conditions.append(c.provider.in_(list(providers)))
    # Without a provider filter every provider's runs count together (a constant stands in).
    who = c.provider if providers is not None else literal_column("''")
    runs = (
        select(
            c.category,
            who.label("who"),
            truncated(c.planned_at, dialect, bucket).label("slot"),
            c.result,
        )
        .where(*conditions)
        .subquery("runs")
    )
    # Counted per result in one pass, grouped by (category, slot) only: fewer groups to sort.
    by_result = [
        func.sum(case((runs.c.result == result, 1), else_=0)).label(result) for result in _RESULTS
    ]
    query = select(
        runs.c.category, runs.c.who, runs.c.slot, func.count().label("planned"), *by_result
    ).group_by(runs.c.category, runs.c.who, runs.c.slot)
    points: dict[tuple[str, str, datetime], dict[str, int]] = {}
    for row in await session.execute(query):
        points[(row.category, row.who, parse_truncated(row.slot))] = {
            "planned": int(row.planned),
            **{result: int(getattr(row, result) or 0) for result in _RESULTS},
        }
    return [
        {
            "category": category,
            **({"provider": who} if providers is not None else {}),
            "bucket_start": slot,
            **counts,
            "compliance_pct": round(100.0 * counts["on_time"] / counts["planned"], 2),
        }
        for (category, who, slot), counts in sorted(points.items())
    ]


async def usage_summary(
    session: AsyncSession,
    *,
    key_id: int | None,
    route: str | None,
    start: datetime,
    end: datetime,
    now: datetime,
    ladder: Ladder,
) -> dict[str, Any]:
    """Inbound API usage over the whole hours touching [start, end), for `GET /api/usage`.

    `key_id` / `route` narrow it (None: all). Returns `start` and `end` (the hours actually
    covered), `total` and `items`: one per (key, route) with `key_id` (None for requests
    without a valid key), `route`, `requests`, `errors` (status ≥ 400), `success_rate`,
    `avg_ms`, `p50_ms`, `p95_ms`; most requests first.
    """
    _check_span(start, end)
    first, last = floor_to(start, HOUR), ceil_to(end, HOUR)
    hours = await hourly_series(
        session,
        kind="api",
        start=first,
        end=last,
        now=now,
        ladder=ladder,
        subjects=None if key_id is None else [str(key_id)],
        detail=route,
    )
    items: dict[tuple[str, str], Series] = {}
    total = Series()
    for subject, detail, _hour, figures in hours:
        items.setdefault((subject, detail), Series()).absorb(figures)
        total.absorb(figures)
    listed = [
        {
            "key_id": int(subject) if subject.lstrip("-").isdigit() else None,
            "route": detail,
            **series.summary(ladder),
        }
        for (subject, detail), series in items.items()
    ]
    listed.sort(key=lambda item: (-item["requests"], item["route"], item["key_id"] or 0))
    return {"start": first, "end": last, "total": total.summary(ladder), "items": listed}


async def daily_counts(
    session: AsyncSession,
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    ladder: Ladder,
    providers: Sequence[str],
) -> dict[tuple[str, datetime], tuple[int, int]]:
    """Probe (requests, errors) per provider and UTC day over the days touching [start, end),
    for the status page's daily bars: summed in SQL from the roll-ups (no histograms read),
    the live hours summarized from raw rows as `hourly_series` does."""
    _check_span(start, end)
    first, last = floor_to(start, DAY), ceil_to(end, DAY)
    live = await live_from(session, kind="probe", now=now)
    out: dict[tuple[str, datetime], tuple[int, int]] = {}
    if not providers:
        return out
    stored_end = min(last, live)
    if first < stored_end:
        c = _ROLL.c
        day = truncated(c.hour, session.get_bind().dialect.name, "day").label("day")
        query = (
            select(c.subject, day, func.sum(c.count), func.sum(c.errors))
            .where(
                c.kind == "probe",
                c.hour >= first,
                c.hour < stored_end,
                c.subject.in_(list(providers)),
            )
            .group_by(c.subject, day)
        )
        for subject, slot, count, errors in await session.execute(query):
            out[(subject, parse_truncated(slot))] = (int(count or 0), int(errors or 0))
    if max(first, live) < last:
        fresh = await aggregate(
            session,
            kind="probe",
            start=max(first, live),
            end=last,
            ladder=ladder,
            subjects=providers,
        )
        for (subject, _detail, hour), figures in fresh.items():
            key = (subject, floor_to(hour, DAY))
            count, errors = out.get(key, (0, 0))
            out[key] = (count + figures.count, errors + figures.errors)
    return out
