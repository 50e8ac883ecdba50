"""`POST /api/schedule/trigger`: run checks now, for every enabled provider or one."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict

from apiwatch.api.deps import RuntimeDep, known_provider

router = APIRouter(prefix="/api/schedule", tags=["schedule"])


class TriggerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: str | None = None
    scope: Literal["health", "all"] = "health"


@router.post("/trigger", summary="Run health checks now (all enabled providers, or one)")
async def trigger(runtime: RuntimeDep, body: TriggerIn | None = None) -> dict[str, Any]:
    body = body or TriggerIn()
    ids = None
    if body.provider is not None:
        spec = known_provider(runtime, body.provider)
        if not spec.enabled:
            raise HTTPException(
                409, f"provider {spec.id!r} is disabled; enable it in its catalogue file"
            )
        ids = [spec.id]
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
