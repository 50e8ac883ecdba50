"""Usage of apiwatch's own API: `GET /api/usage` (by key, route and time range) and
`GET /api/usage/keys/{id}` (one key: its details and usage per route).

Both read the hourly roll-ups of `api_usage` (written by the background job) plus the
current hour live, like the charts; a read never writes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Query

from apiwatch.analysis.rollups import LADDER
from apiwatch.api.deps import RuntimeDep, SessionDep, as_utc
from apiwatch.api.routers.charts import parse_span
from apiwatch.domain import utcnow
from apiwatch.storage.repositories import charts as chart_repo

router = APIRouter(prefix="/api/usage", tags=["usage"])


def _window(
    since: datetime | None, until: datetime | None, range_: str
) -> tuple[datetime, datetime]:
    now = utcnow()
    end = as_utc(until, "until") or now
    start = as_utc(since, "since") or end - parse_span(range_, "range")
    if end <= start:
        raise HTTPException(400, "until must be after since")
    if end - start > timedelta(days=90):
        raise HTTPException(422, "the time range may span at most 90 days")
    return start, end


@router.get("", summary="Requests, errors and latency per key and route over a time range")
async def usage(
    runtime: RuntimeDep,
    session: SessionDep,
    key_id: int | None = Query(default=None, ge=1, le=2**31 - 1),
    route: str | None = Query(default=None, max_length=256),
    since: datetime | None = None,
    until: datetime | None = None,
    span: str = Query(default="24h", max_length=8, alias="range"),
) -> dict[str, Any]:
    start, end = _window(since, until, span)
    return await chart_repo.usage_summary(
        session, key_id=key_id, route=route, start=start, end=end, now=utcnow(), ladder=LADDER
    )


@router.get("/keys/{key_id}", summary="One key: details and usage per route")
async def key_usage(
    key_id: int,
    runtime: RuntimeDep,
    session: SessionDep,
    since: datetime | None = None,
    until: datetime | None = None,
    span: str = Query(default="24h", max_length=8, alias="range"),
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
