"""One provider's history for its dashboard page: `GET /api/providers/{id}/outcomes` (the
stacked error distribution over time) and `GET /api/providers/{id}/daily` (daily uptime and
level, the 90-day bar).

Outcomes are checks (final attempts, skipped left out) per outcome. Over 1 h and 24 h they
are counted from the raw attempts (one provider's day is a few thousand rows even in a big
database). Over 7 d and 30 d that would read up to a month of raw rows, seconds at 10 M
stored attempts, so those ranges come from the hourly roll-ups, which keep the checks per
outcome, plus the live hours from raw rows: the same points per hour (7 d) or day (30 d).
Hours rolled up before the roll-ups kept outcomes (revision 0005) only know requests and
errors; they show as `ok` and `error` requests and the answer says `"counted": "requests"`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncSession

from apiwatch.analysis.rollups import LADDER
from apiwatch.analysis.status_page import day_bars, level_thresholds
from apiwatch.api.contract import errors
from apiwatch.api.deps import RuntimeDep, SessionDep, known_provider
from apiwatch.domain import utcnow
from apiwatch.storage.repositories import attempts
from apiwatch.storage.repositories import charts as chart_repo
from apiwatch.storage.repositories.raw_summary import HOUR, floor_to

router = APIRouter(prefix="/api/providers", tags=["providers"])

RANGES = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7)}
RANGES["30d"] = timedelta(days=30)
DAY = timedelta(days=1)


@router.get(
    "/{provider_id}/outcomes",
    summary="Checks per outcome (or ok/error) over time",
    responses=errors(404),
)
async def outcomes(
    provider_id: str,
    runtime: RuntimeDep,
    session: SessionDep,
    range_: Annotated[Literal["1h", "24h", "7d", "30d"], Query(alias="range")] = "24h",
) -> dict[str, Any]:
    known_provider(runtime, provider_id)
    unit: Literal["hour", "day"] = "day" if range_ == "30d" else "hour"
    now = utcnow()
    since = now - RANGES[range_]
    if range_ in ("1h", "24h"):
        rows = await attempts.outcome_counts(session, provider=provider_id, since=since, unit=unit)
        counted = "checks"
    else:
        rows, legacy = await _rolled_up_outcomes(
            session, provider_id, since=since, now=now, unit=unit
        )
        counted = "requests" if legacy else "checks"
    return {
        "provider": provider_id,
        "range": range_,
        "bucket": unit,
        "counted": counted,
        "points": rows,
    }


async def _rolled_up_outcomes(
    session: AsyncSession, provider_id: str, *, since: datetime, now: datetime, unit: str
) -> tuple[list[dict[str, Any]], bool]:
    """Checks per outcome and hour or day from the hour holding `since` to `now`, and
    whether an hour without outcomes (an older roll-up: ok and error requests) was among
    them."""
    step = DAY if unit == "day" else HOUR
    hours = await chart_repo.hourly_series(
        session,
        kind="probe",
        start=floor_to(since, HOUR),
        end=now,
        now=now,
        ladder=LADDER,
        subjects=[provider_id],
        outcomes=True,
    )
    slots: dict[tuple[datetime, str], int] = {}
    legacy = False
    for _subject, _detail, hour, figures in hours:
        slot = floor_to(hour, step)
        counts = figures.outcomes
        if counts is None:
            legacy = True
            counts = {"ok": figures.count - figures.errors, "error": figures.errors}
        for outcome, count in counts.items():
            slots[(slot, outcome)] = slots.get((slot, outcome), 0) + count
    points = [
        {"bucket_start": start, "outcome": outcome, "count": count}
        for (start, outcome), count in sorted(slots.items())
        if count
    ]
    return points, legacy


@router.get(
    "/{provider_id}/daily",
    summary="Daily uptime and level over the last days",
    responses=errors(404),
)
async def daily(
    provider_id: str,
    runtime: RuntimeDep,
    session: SessionDep,
    days: Annotated[int, Query(ge=1, le=90)] = 90,
) -> dict[str, Any]:
    known_provider(runtime, provider_id)
    now = utcnow()
    first = floor_to(now, DAY) - (days - 1) * DAY
    counts = await chart_repo.daily_counts(
        session, start=first, end=now, now=now, ladder=LADDER, providers=[provider_id]
    )
    out = day_bars(counts, provider_id, first=first, days=days)
    levels = level_thresholds()
    return {"provider": provider_id, "days": out, "levels": levels}
