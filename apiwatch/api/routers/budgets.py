"""`GET /api/rate-limits` and `GET /api/config/keys`: outbound budgets and the key pools."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from apiwatch.api.deps import RuntimeDep, known_provider

router = APIRouter(prefix="/api", tags=["budgets"])


class WindowOut(BaseModel):
    provider: str
    window: str
    limit: int
    used: int
    remaining: int
    percent: float
    reset_at: datetime
    source: Literal["counted", "reported"]
    forecast_exhausted_at: datetime | None


class BudgetsOut(BaseModel):
    windows: list[WindowOut]
    blocked_until: dict[str, datetime]


@router.get("/rate-limits", response_model=BudgetsOut, summary="Every provider's budget windows")
async def rate_limits(runtime: RuntimeDep, provider: str | None = None) -> dict[str, Any]:
    guard = runtime.engine.guard
    if guard is None:
        raise HTTPException(503, "budgets are not enabled in this runtime")
    ids = [known_provider(runtime, provider).id] if provider else list(runtime.catalogue.providers)
    windows = [w for pid in ids for w in await guard.gate.snapshot(pid)]
    blocked = {pid: until for pid in ids if (until := await guard.gate.blocked_until(pid))}
    return {"windows": windows, "blocked_until": blocked}


@router.get("/config/keys", summary="Every configured provider key, masked, with its status")
async def keys(runtime: RuntimeDep) -> list[dict[str, Any]]:
    guard = runtime.engine.guard
    if guard is None:
        raise HTTPException(503, "key pools are not enabled in this runtime")
    return [status for pool in guard.keys.values() for status in pool.statuses()]
