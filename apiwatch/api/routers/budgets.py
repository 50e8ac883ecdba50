"""`GET /api/rate-limits` and `GET /api/config/keys`: outbound budgets and the key pools."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from apiwatch.api.contract import StrictBody, errors
from apiwatch.api.deps import RuntimeDep, known_provider

router = APIRouter(prefix="/api", tags=["budgets"])


class WindowOut(BaseModel):
    provider: str
    # The budget tier: `ip` (shared by every endpoint and key), `endpoint` or `key`; `scope`
    # names the endpoint or the key's environment variable ("" for the ip tier).
    tier: Literal["ip", "endpoint", "key"]
    scope: str
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


@router.get(
    "/rate-limits",
    response_model=BudgetsOut,
    summary="Every provider's budget windows, per tier (ip, endpoint, key)",
    responses=errors(404, 503),
)
async def rate_limits(runtime: RuntimeDep, provider: str | None = None) -> dict[str, Any]:
    guard = runtime.engine.guard
    if guard is None:
        raise HTTPException(503, "budgets are not enabled in this runtime")
    ids = [known_provider(runtime, provider).id] if provider else list(runtime.catalogue.providers)
    windows = [w for pid in ids for w in await guard.gate.snapshot(pid)]
    blocked = {pid: until for pid in ids if (until := await guard.gate.blocked_until(pid))}
    return {"windows": windows, "blocked_until": blocked}


@router.get(
    "/config/keys",
    summary="Every configured provider key, masked, with its status",
    responses=errors(503),
)
async def keys(runtime: RuntimeDep) -> list[dict[str, Any]]:
    guard = runtime.engine.guard
    if guard is None:
        raise HTTPException(503, "key pools are not enabled in this runtime")
    return [status for pool in guard.keys.values() for status in pool.statuses()]


class KeyTestIn(StrictBody):
    provider: str | None = None
    env_name: str | None = None


@router.post(
    "/config/keys/test",
    summary="Test one key or all: one cheap request each",
    responses=errors(**{"404": "Unknown provider, or no configured key of that name"}),
)
async def test_keys(runtime: RuntimeDep, body: KeyTestIn | None = None) -> list[dict[str, Any]]:
    body = body or KeyTestIn()
    if body.provider is not None:
        known_provider(runtime, body.provider)
    results = await runtime.test_keys(provider_id=body.provider, env_name=body.env_name)
    if body.env_name is not None and not results:
        raise HTTPException(404, f"no configured key named {body.env_name!r}")
    return results
