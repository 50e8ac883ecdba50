"""Usage of apiwatch's own API: `GET /api/usage` (by key, route and time range),
`GET /api/usage/keys/{id}` (one key: its details and usage per route) and
`GET /api/usage/refusals` (requests refused before they reached the API, by reason).

The first two read the hourly roll-ups of `api_usage` (written by the background job) plus
the current hour live, like the charts; refusals read the per-minute counts in
`api_refusals` plus the groups this process still holds in memory. A read never writes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel

from apiwatch.analysis.rollups import LADDER
from apiwatch.api.contract import errors
from apiwatch.api.deps import Moment, RuntimeDep, SessionDep, as_utc
from apiwatch.api.routers.charts import parse_span, span_query
from apiwatch.domain import utcnow
from apiwatch.storage.repositories import charts as chart_repo
from apiwatch.storage.repositories import refusals as refusal_repo

router = APIRouter(prefix="/api/usage", tags=["usage"])


def _window(
    since: datetime | None, until: datetime | None, range_: str
) -> tuple[datetime, datetime]:
    now = utcnow()
    end = as_utc(until) or now
    start = as_utc(since) or end - parse_span(range_, "range")
    if end <= start:
        raise HTTPException(400, "until must be after since")
    if end - start > timedelta(days=90):
        raise HTTPException(400, "the time range may span at most 90 days")
    return start, end


WINDOW_400 = "400 when `until` is not after `since`, or they span more than 90 days."


@router.get(
    "",
    summary="Requests, errors and latency per key and route over a time range",
    description=WINDOW_400,
    responses=errors(400),
)
async def usage(
    runtime: RuntimeDep,
    session: SessionDep,
    key_id: int | None = Query(default=None, ge=1, le=2**31 - 1),
    route: str | None = Query(default=None, max_length=256),
    since: Moment | None = None,
    until: Moment | None = None,
    span: str = span_query("range", "24h"),
) -> dict[str, Any]:
    start, end = _window(since, until, span)
    return await chart_repo.usage_summary(
        session, key_id=key_id, route=route, start=start, end=end, now=utcnow(), ladder=LADDER
    )


@router.get(
    "/keys/{key_id:int}",
    operation_id="key_usage",
    summary="One key: details and usage per route",
    description=WINDOW_400,
    responses=errors(400, 404),
)
async def key_usage(
    key_id: int,
    runtime: RuntimeDep,
    session: SessionDep,
    since: Moment | None = None,
    until: Moment | None = None,
    span: str = span_query("range", "24h"),
) -> dict[str, Any]:
    if not 1 <= key_id <= 2**31 - 1:
        raise HTTPException(404, f"no API key with id {key_id}")
    await runtime.access.flush_usage()
    key = await runtime.access.get(key_id)
    if key is None:
        raise HTTPException(404, f"no API key with id {key_id}")
    start, end = _window(since, until, span)
    summary = await chart_repo.usage_summary(
        session, key_id=key_id, route=None, start=start, end=end, now=utcnow(), ladder=LADDER
    )
    return {"key": key, **summary}


class RefusalReason(BaseModel):
    reason: str
    status: int
    count: int


class RefusalPoint(BaseModel):
    t: datetime
    reason: str
    count: int


class RefusalNetwork(BaseModel):
    client_prefix: str
    count: int


class Refusals(BaseModel):
    start: datetime
    end: datetime
    bucket: Literal["minute", "hour"]
    total: int
    by_reason: list[RefusalReason]
    # Only buckets with refusals are listed.
    series: list[RefusalPoint]
    networks: list[RefusalNetwork]


# Minute buckets up to this span (auto: up to 6 h); past it, hours.
MAX_MINUTE_SPAN = timedelta(hours=24)
AUTO_MINUTE_SPAN = timedelta(hours=6)
REASONS = (
    "`missing_key`, `invalid_key`, `inactive_key`, `admin_required`, `rate_limited_minute`, "
    "`rate_limited_hour`, `rate_limited_day`, `failed_auth_throttled`, `limiter_unavailable` "
    "(`unknown` for requests counted before reasons were kept)"
)


@router.get(
    "/refusals",
    operation_id="usage_refusals",
    response_model=Refusals,
    summary="Requests refused before reaching the API, by reason, over time and by network",
    description=(
        f"Refusals of the key middleware summed per reason ({REASONS}), per minute or hour "
        "and reason, and for the ten client networks (IPv4 /24, IPv6 /48) refused most. "
        "The current minute comes from this process's memory. "
        f"{WINDOW_400} 400 also for minute buckets over more than 24 hours."
    ),
    responses=errors(400),
)
async def refusals(
    runtime: RuntimeDep,
    session: SessionDep,
    since: Moment | None = None,
    until: Moment | None = None,
    span: str = span_query("range", "24h"),
    bucket: Annotated[
        Literal["minute", "hour"] | None,
        Query(description="minute or hour; by default minutes up to 6 h, hours beyond"),
    ] = None,
) -> Refusals:
    start, end = _window(since, until, span)
    if bucket is None:
        bucket = "minute" if end - start <= AUTO_MINUTE_SPAN else "hour"
    elif bucket == "minute" and end - start > MAX_MINUTE_SPAN:
        raise HTTPException(400, "minute buckets cover at most 24 hours; use bucket=hour")
    summary = await refusal_repo.refusal_summary(
        session, start=start, end=end, bucket=bucket, pending=runtime.access.refusals.pending()
    )
    return Refusals.model_validate(summary)
