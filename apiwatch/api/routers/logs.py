"""`GET /api/logs`: connection attempts, newest first, filtered and paginated."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel

from apiwatch.api.contract import errors
from apiwatch.api.deps import Moment, RuntimeDep, SessionDep, as_utc, known_provider
from apiwatch.domain import Outcome
from apiwatch.storage.repositories import attempts

router = APIRouter(prefix="/api", tags=["logs"])


class AttemptOut(BaseModel):
    id: int
    provider: str
    endpoint: str
    outcome: Outcome
    status_code: int | None
    latency_ms: float | None
    reason: str
    attempt: int
    # False for an attempt retried at once within the same check; status and uptime judge
    # only final attempts.
    final: bool
    key_label: str | None
    started_at: datetime
    # Where the worker that probed stands (APIWATCH_LOCATION); "" without locations.
    location: str = ""


class LogPage(BaseModel):
    items: list[AttemptOut]
    total: int
    limit: int
    offset: int


@router.get(
    "/logs",
    response_model=LogPage,
    summary="Connection attempts, newest first",
    description="400 when `since` is after `until`; 404 for an unknown provider.",
    responses=errors(400, 404),
)
async def get_logs(
    runtime: RuntimeDep,
    session: SessionDep,
    provider: str | None = None,
    outcome: Outcome | None = None,
    since: Moment | None = None,
    until: Moment | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> LogPage:
    if provider is not None:
        known_provider(runtime, provider)
    since, until = as_utc(since), as_utc(until)
    if since and until and since > until:
        raise HTTPException(400, "since must not be after until")
    rows, total = await attempts.list_attempts(
        session,
        provider=provider,
        outcome=outcome.value if outcome else None,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    return LogPage(
        items=[AttemptOut.model_validate(row) for row in rows],
        total=total,
        limit=limit,
        offset=offset,
    )
