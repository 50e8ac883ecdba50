"""`GET /api/status`: the overall picture — counts by status and a health score."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from apiwatch.api.deps import RuntimeDep
from apiwatch.domain import Status
from apiwatch.runtime.feed_status import overall_status

router = APIRouter(prefix="/api", tags=["status"])


class StatusOut(BaseModel):
    counts: dict[Status, int]
    providers_total: int
    providers_enabled: int
    health_score: float | None
    last_check_at: datetime | None
    # "ok", or "degraded" when a service apiwatch needs is away or probing has stalled:
    # the provider figures above may then be stale or partly local (see `degraded_reasons`).
    state: str
    degraded_reasons: list[str]
    dependencies: dict[str, dict[str, object]]


@router.get("/status", response_model=StatusOut, summary="Overall health of all providers")
async def get_status(runtime: RuntimeDep) -> StatusOut:
    """Answered from memory, so it still tells the truth while the database is away (the
    live feed's `status_update` is built by the same function)."""
    return StatusOut(**overall_status(runtime))
