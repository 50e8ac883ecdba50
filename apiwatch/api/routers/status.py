"""`GET /api/status`: the overall picture — counts by status and a health score."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from apiwatch.api.deps import RuntimeDep, SessionDep
from apiwatch.domain import Status
from apiwatch.storage.repositories import attempts

router = APIRouter(prefix="/api", tags=["status"])

# Weights of the health score: a degraded provider counts half.
SCORE_WEIGHTS = {Status.ONLINE: 100.0, Status.DEGRADED: 50.0, Status.OFFLINE: 0.0}


class StatusOut(BaseModel):
    counts: dict[Status, int]
    providers_total: int
    providers_enabled: int
    health_score: float | None
    last_check_at: datetime | None


def health_score(statuses: list[Status]) -> float | None:
    """Mean of 100 (online), 50 (degraded), 0 (offline) over providers with a known status."""
    known = [SCORE_WEIGHTS[s] for s in statuses if s in SCORE_WEIGHTS]
    return round(sum(known) / len(known), 1) if known else None


@router.get("/status", response_model=StatusOut, summary="Overall health of all providers")
async def get_status(runtime: RuntimeDep, session: SessionDep) -> StatusOut:
    enabled = [spec.id for spec in runtime.catalogue.enabled()]
    states = runtime.tracker.states()
    statuses = [states[pid].status for pid in enabled]
    counts = {status: 0 for status in Status}
    for status in statuses:
        counts[status] += 1
    return StatusOut(
        counts=counts,
        providers_total=len(runtime.catalogue.providers),
        providers_enabled=len(enabled),
        health_score=health_score(statuses),
        last_check_at=await attempts.last_check_time(session),
    )
