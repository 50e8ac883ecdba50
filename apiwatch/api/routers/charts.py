"""Chart data: `GET /api/charts/health-history` (requests, success rate and latency
percentiles per provider over time) and `GET /api/charts/compliance` (schedule compliance
per category, or per provider's schedule, over time).

Both read hourly roll-ups plus the live current hour (`storage.repositories.charts`), so a
response costs the same with a thousand raw rows or ten million.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel

from apiwatch.analysis.rollups import LADDER
from apiwatch.api.contract import errors
from apiwatch.api.deps import RuntimeDep, SessionDep, known_provider
from apiwatch.domain import Category, utcnow
from apiwatch.storage.repositories import charts as chart_repo
from apiwatch.storage.repositories.raw_summary import floor_to

router = APIRouter(prefix="/api/charts", tags=["charts"])

MAX_RANGE = timedelta(days=90)
# 1h to 2160h, or 1d to 90d: stated in the schema, so a span it allows is never refused.
SPAN_PATTERN = (
    r"^0*([1-9][0-9]{0,2}|1[0-9]{3}|20[0-9]{2}|21[0-5][0-9]|2160)h$"
    r"|^0*([1-9]|[1-8][0-9]|90)d$"
)
SPAN_HELP = "a number of hours or days, 1h to 90d (2160h), such as 24h or 7d"
_SPAN = re.compile(r"([0-9]+)([hd])")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1)}


def parse_span(value: str, name: str) -> timedelta:
    """`24h`, `7d`… → timedelta; otherwise a 422 (in the shape of every 422) saying what is
    accepted. The same rule as SPAN_PATTERN, which the schema states."""
    match = _SPAN.fullmatch(value)
    span = int(match.group(1)) * _UNITS[match.group(2)] if match else None
    if span is None or span <= timedelta(0) or span > MAX_RANGE:
        what = "between 1h and 90d" if match else "a number of hours or days such as 24h or 7d"
        error = {"loc": ("query", name), "msg": f"{name} must be {what}", "type": "value_error"}
        raise RequestValidationError([error])
    return span


def span_query(name: str, default: str, description: str = SPAN_HELP) -> Any:
    """A span in the query: the pattern is stated in the schema, checked by `parse_span`
    (whose message says what is accepted, which a pattern mismatch would not)."""
    return Query(
        default=default,
        alias=name,
        description=description,
        json_schema_extra={"pattern": SPAN_PATTERN},
    )


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
    # Set when the request named providers: then one series per provider (and category).
    provider: str | None = None
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
    description="400 when the bucket is longer than the range.",
    responses=errors(400, 404),
)
async def health_history(
    runtime: RuntimeDep,
    session: SessionDep,
    range_: str = span_query("range", "24h"),
    bucket: str = span_query("bucket", "1h", f"{SPAN_HELP}; at most the range"),
    provider: Annotated[list[str] | None, Query(description="repeat for several")] = None,
) -> HealthHistory:
    span, step = parse_span(range_, "range"), parse_span(bucket, "bucket")
    if step > span:
        raise HTTPException(400, f"bucket ({bucket}) must not be longer than range ({range_})")
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
    summary="Schedule compliance % per category (or per provider) per hour or day",
    description="With `provider`, one series per named provider's schedule (each with its "
    "`provider` and `category`) instead of one per category; 404 for an unknown provider.",
    responses=errors(404),
)
async def compliance(
    runtime: RuntimeDep,
    session: SessionDep,
    range_: str = span_query("range", "7d"),
    bucket: Annotated[Literal["hour", "day"], Query()] = "hour",
    category: Annotated[list[Category] | None, Query(description="repeat for several")] = None,
    provider: Annotated[
        list[str] | None, Query(description="one series per provider; repeat for several")
    ] = None,
) -> ComplianceHistory:
    span = parse_span(range_, "range")
    specs = [known_provider(runtime, provider_id) for provider_id in provider or []]
    end = utcnow()
    start = end - span
    categories = None if category is None else [c.value for c in category]
    points = await chart_repo.compliance(
        session, start=start, end=end, bucket=bucket, categories=categories, providers=provider
    )
    series: dict[tuple[str, str | None], list[CompliancePoint]] = {}
    if provider is None:
        series = {(c, None): [] for c in categories or []}
    else:  # a named provider with no planned run still gets its (empty) series
        series = {
            (spec.category.value, spec.id): []
            for spec in specs
            if categories is None or spec.category.value in categories
        }
    for point in points:
        series.setdefault((point["category"], point.get("provider")), []).append(
            CompliancePoint(t=point["bucket_start"], **point)
        )
    step = timedelta(hours=1) if bucket == "hour" else timedelta(days=1)
    return ComplianceHistory(
        range=range_,
        bucket=bucket,
        start=start,
        end=end,
        buckets=_bucket_starts(start, end, step),
        series=[
            ComplianceSeries(category=c, provider=p, points=pts)
            for (c, p), pts in sorted(
                series.items(), key=lambda item: (item[0][0], item[0][1] or "")
            )
        ],
    )
