"""Chart data: `GET /api/charts/health-history` (requests, success rate and latency
percentiles per provider over time) and `GET /api/charts/compliance` (schedule compliance
per category over time).

Both read hourly roll-ups plus the live current hour (`storage.repositories.charts`), so a
response costs the same with a thousand raw rows or ten million.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel

from apiwatch.analysis.rollups import LADDER
from apiwatch.api.deps import RuntimeDep, SessionDep, known_provider
from apiwatch.domain import Category, utcnow
from apiwatch.storage.repositories import charts as chart_repo
from apiwatch.storage.repositories.rollups import floor_to

router = APIRouter(prefix="/api/charts", tags=["charts"])

MAX_RANGE = timedelta(days=90)
_SPAN = re.compile(r"(\d{1,4})([hd])")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1)}


def parse_span(value: str, name: str) -> timedelta:
    """`24h`, `7d`… → timedelta; a 422 saying what is accepted otherwise."""
    match = _SPAN.fullmatch(value.strip())
    if match is None:
        raise HTTPException(
            422, f"{name} must be a number of hours or days such as 24h or 7d, got {value!r}"
        )
    span = int(match.group(1)) * _UNITS[match.group(2)]
    if span <= timedelta(0) or span > MAX_RANGE:
        raise HTTPException(422, f"{name} must be between 1h and 90d, got {value!r}")
    return span


class HealthPoint(BaseModel):
    t: datetime
    requests: int
    errors: int
    success_rate: float | None
    avg_ms: float | None
    p50_ms: float | None
    p95_ms: float | None


class HealthSeries(BaseModel):
    provider: str
    points: list[HealthPoint]


class HealthHistory(BaseModel):
    range: str
    bucket: str
    start: datetime
    end: datetime
    # Every bucket's start, so a chart can show gaps: series list only buckets with requests.
    buckets: list[datetime]
    series: list[HealthSeries]


class CompliancePoint(BaseModel):
    t: datetime
    planned: int
    on_time: int
    late: int
    skipped: int
    compliance_pct: float


class ComplianceSeries(BaseModel):
    category: str
    points: list[CompliancePoint]


class ComplianceHistory(BaseModel):
    range: str
    bucket: Literal["hour", "day"]
    start: datetime
    end: datetime
    buckets: list[datetime]
    series: list[ComplianceSeries]


def _bucket_starts(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    first = floor_to(start, step)
    count = -((first - end) // step)  # ceil: every bucket that starts before `end`
    return [first + i * step for i in range(count)]


@router.get(
    "/health-history",
    response_model=HealthHistory,
    summary="Per provider over time: requests, success rate, latency p50/p95",
)
async def health_history(
    runtime: RuntimeDep,
    session: SessionDep,
    range_: Annotated[str, Query(alias="range", description="e.g. 24h, 7d; at most 90d")] = "24h",
    bucket: Annotated[str, Query(description="e.g. 1h, 6h, 1d; whole hours")] = "1h",
    provider: Annotated[list[str] | None, Query(description="repeat for several")] = None,
) -> HealthHistory:
    span, step = parse_span(range_, "range"), parse_span(bucket, "bucket")
    if step > span:
        raise HTTPException(422, f"bucket ({bucket}) must not be longer than range ({range_})")
    for provider_id in provider or []:
        known_provider(runtime, provider_id)
    end = utcnow()
    start = end - span
    points = await chart_repo.health_history(
        session, start=start, end=end, bucket=step, providers=provider, now=end, ladder=LADDER
    )
    series: dict[str, list[HealthPoint]] = {pid: [] for pid in provider or []}
    for point in points:
        series.setdefault(point["provider"], []).append(
            HealthPoint(t=point["bucket_start"], **point)
        )
    return HealthHistory(
        range=range_,
        bucket=bucket,
        start=start,
        end=end,
        buckets=_bucket_starts(start, end, step),
        series=[HealthSeries(provider=pid, points=pts) for pid, pts in sorted(series.items())],
    )


@router.get(
    "/compliance",
    response_model=ComplianceHistory,
    summary="Schedule compliance % per category per hour or day",
)
async def compliance(
    session: SessionDep,
    range_: Annotated[str, Query(alias="range", description="e.g. 24h, 7d; at most 90d")] = "7d",
    bucket: Annotated[Literal["hour", "day"], Query()] = "hour",
    category: Annotated[list[Category] | None, Query(description="repeat for several")] = None,
) -> ComplianceHistory:
    span = parse_span(range_, "range")
    end = utcnow()
    start = end - span
    categories = None if category is None else [c.value for c in category]
    points = await chart_repo.compliance(
        session, start=start, end=end, bucket=bucket, categories=categories
    )
    series: dict[str, list[CompliancePoint]] = {c: [] for c in categories or []}
    for point in points:
        series.setdefault(point["category"], []).append(
            CompliancePoint(t=point["bucket_start"], **point)
        )
    step = timedelta(hours=1) if bucket == "hour" else timedelta(days=1)
    return ComplianceHistory(
        range=range_,
        bucket=bucket,
        start=start,
        end=end,
        buckets=_bucket_starts(start, end, step),
        series=[ComplianceSeries(category=c, points=pts) for c, pts in sorted(series.items())],
    )
