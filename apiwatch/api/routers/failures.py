"""`GET /api/failures`: what is failing, where, and what to do about each failure class."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query

from apiwatch.analysis.failures import REMEDIATION, remediation_for
from apiwatch.api.deps import SessionDep
from apiwatch.domain import Outcome, utcnow
from apiwatch.storage.repositories import attempts

router = APIRouter(prefix="/api", tags=["failures"])


@router.get("/failures", summary="Failure distribution, most failing providers, remediation")
async def get_failures(
    session: SessionDep,
    hours: Annotated[float, Query(gt=0, le=24 * 90)] = 24,
    recent: Annotated[int, Query(ge=1, le=500)] = 20,
) -> dict[str, Any]:
    summary = await attempts.failure_summary(
        session, since=utcnow() - timedelta(hours=hours), recent_limit=recent
    )
    return {
        "window_hours": hours,
        "by_outcome": [
            {"outcome": outcome, "count": count, "remediation": remediation_for(Outcome(outcome))}
            for outcome, count in sorted(summary["by_outcome"].items(), key=lambda kv: -kv[1])
        ],
        "top_providers": summary["top_providers"],
        "recent": [
            {**row, "remediation": remediation_for(Outcome(row["outcome"]))}
            for row in summary["recent"]
        ],
        "remediation": {outcome.value: text for outcome, text in REMEDIATION.items()},
    }
