"""`GET /api/events`: stored events — budget warnings, expired keys, breaker moves, stale
and divergent data, schedule interval changes, apiwatch's own dependencies going and coming."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from apiwatch.api.contract import errors
from apiwatch.api.deps import Moment, RuntimeDep, SessionDep, as_utc, known_provider
from apiwatch.storage.repositories import events

router = APIRouter(prefix="/api", tags=["events"])

Kind = Literal[
    "rate_limit_warning",
    "key_expired",
    "breaker_transition",
    "data_stale",
    "data_divergent",
    "book_integrity",
    "schedule_interval_changed",
    "dependency_change",
    "tls_certificate",
]


@router.get(
    "/events",
    summary="Budget warnings, expired keys, breaker transitions, stale or divergent data, "
    "interval changes",
    responses=errors(404),
)
async def list_events(
    runtime: RuntimeDep,
    session: SessionDep,
    kind: Kind | None = None,
    provider: str | None = None,
    since: Moment | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    if provider is not None:
        known_provider(runtime, provider)
    return await events.list_events(
        session, kind=kind, provider=provider, since=as_utc(since), limit=limit
    )
