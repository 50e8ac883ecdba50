"""Schedules: `GET /api/schedule` (intervals, next and last runs, 24 h compliance),
`PUT /api/schedule/{id}` (interval, enabled) and `POST /api/schedule/trigger` (run checks
or collections now)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import ConfigDict, Field, model_validator

from apiwatch.api.contract import StrictBody, body_schema, errors
from apiwatch.api.deps import RuntimeDep, SessionDep, known_provider
from apiwatch.domain import Category, utcnow
from apiwatch.storage.repositories import schedules as schedule_repo

router = APIRouter(prefix="/api/schedule", tags=["schedule"])


@router.get("", summary="Every collection schedule with its next run and 24 h compliance")
async def list_schedules(runtime: RuntimeDep, session: SessionDep) -> dict[str, Any]:
    now = utcnow()
    rows = await schedule_repo.list_schedules(session)
    summary = await schedule_repo.compliance_summary(session, since=now - timedelta(hours=24))
    # A week back covers every allowed interval (at most a week).
    last = await schedule_repo.last_runs(session, since=now - timedelta(days=8))
    out = []
    for row in rows:
        key = (row["provider"], row["category"])
        state = runtime.collection.schedules.get(row["provider"])
        stats = summary.get(key, {})
        last_run = last.get(key)
        out.append(
            {
                "id": row["id"],
                "provider": row["provider"],
                "category": row["category"],
                "interval_s": row["interval_s"],
                "effective_interval_s": state.effective_interval_s if state else None,
                "adaptive_reason": state.adaptive_reason if state else "",
                "enabled": row["enabled"],
                "next_run": runtime.scheduler.next_run(f"collect:{row['provider']}"),
                "last_run": None
                if last_run is None
                else {
                    "planned_at": last_run["planned_at"],
                    "started_at": last_run["started_at"],
                    "result": last_run["result"],
                    "reason": last_run["reason"],
                },
                "compliance_24h": {
                    "planned": stats.get("planned", 0),
                    "compliance_pct": stats.get("compliance_pct"),
                    "on_time": stats.get("on_time", 0),
                    "late": stats.get("late", 0),
                    "skipped": stats.get("skipped", 0),
                    "skip_reasons": stats.get("skip_reasons", {}),
                },
            }
        )
    return {"schedules": out, "health_interval_s": runtime.settings.health_interval_s}


class ScheduleIn(StrictBody):
    # Either field or both; neither may be null.
    model_config = ConfigDict(json_schema_extra=body_schema(min_properties=1))

    # At least a second, at most a week: beyond either a schedule is a mistake.
    interval_s: float = Field(default=None, ge=1, le=7 * 86400)
    enabled: bool = Field(default=None)

    @model_validator(mode="after")
    def _something(self) -> ScheduleIn:
        if not self.model_fields_set:
            raise ValueError("give interval_s and/or enabled")
        return self


@router.put(
    "/{schedule_id:int}",
    summary="Change a schedule's interval or enable/disable it",
    description="409 when the interval is faster than the provider's rate limits allow.",
    responses=errors(404, 409),
)
async def update_schedule(
    schedule_id: int, body: ScheduleIn, runtime: RuntimeDep
) -> dict[str, Any]:
    if not 1 <= schedule_id <= 2**31 - 1:
        raise HTTPException(404, f"no schedule with id {schedule_id}")
    try:
        row = await runtime.update_schedule(
            schedule_id, interval_s=body.interval_s, enabled=body.enabled
        )
    except ValueError as error:
        # Well-formed, but the provider's limits cannot take it: a conflict with its budget.
        raise HTTPException(409, str(error)) from error
    if row is None:
        raise HTTPException(404, f"no schedule with id {schedule_id}; see GET /api/schedule")
    return row


class TriggerIn(StrictBody):
    provider: str | None = None
    category: Category | None = Field(default=None, strict=False)
    scope: Literal["health", "all"] = "health"
    # Run the data collection (collectors, freshness, consensus) instead of health checks.
    collect: bool = False


@router.post(
    "/trigger",
    responses=errors(**{"404": "Unknown provider, or no enabled provider in the category"})
    | errors(**{"409": "The provider is disabled"}),
    summary="Run health checks or data collection now (all enabled providers, a category, "
    "or one provider)",
)
async def trigger(runtime: RuntimeDep, body: TriggerIn | None = None) -> dict[str, Any]:
    body = body or TriggerIn()
    specs = runtime.catalogue.enabled()
    if body.provider is not None:
        spec = known_provider(runtime, body.provider)
        if not spec.enabled:
            raise HTTPException(
                409, f"provider {spec.id!r} is disabled; enable it in its catalogue file"
            )
        specs = [spec]
    if body.category is not None:
        specs = [spec for spec in specs if spec.category is body.category]
        if not specs:
            raise HTTPException(
                404, f"no enabled provider in category {body.category.value!r} matches"
            )
    ids = [spec.id for spec in specs]
    if body.collect:
        runs = list(await asyncio.gather(*(runtime.collection.collect(pid) for pid in ids)))
        # collect() reports its own errors in each run; nothing is raised past it.
        return {"collected": runs, "providers": ids}
    results = await runtime.check(provider_ids=ids, scope=body.scope)
    providers = sorted({r.provider for r in results})
    return {
        "ran": len(results),
        "scope": body.scope,
        "results": [r.as_dict() for r in results],
        "statuses": {
            pid: {
                "status": runtime.tracker.state(pid).status,
                "reason": runtime.tracker.state(pid).reason,
            }
            for pid in providers
        },
    }
