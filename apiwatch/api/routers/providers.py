"""`GET /api/providers` and `GET /api/providers/{id}`: each provider's status and uptime."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from apiwatch.api.contract import errors
from apiwatch.api.deps import RuntimeDep, SessionDep, known_provider
from apiwatch.api.routers.certificates import CertificateOut, provider_certificate
from apiwatch.catalogue.schema import ProviderSpec
from apiwatch.domain import Category, Outcome, ProviderState, Status, utcnow
from apiwatch.runtime import Runtime
from apiwatch.storage.repositories import attempts, status_changes

router = APIRouter(prefix="/api", tags=["providers"])


class ProviderOut(BaseModel):
    id: str
    name: str
    category: Category
    enabled: bool
    # Where the running definition comes from: builtin, file, api or api-override
    # (docs/providers.md).
    source: str
    status: Status
    reason: str
    status_since: datetime | None
    consecutive_failures: int
    last_outcome: Outcome | None
    last_status_code: int | None
    last_latency_ms: float | None
    last_checked_at: datetime | None
    uptime_24h_pct: float | None
    checks_24h: int


class EndpointOut(BaseModel):
    name: str
    method: str
    path: str
    needs_key: bool
    has_timestamp: bool


class StatusChangeOut(BaseModel):
    old_status: Status
    new_status: Status
    reason: str
    changed_at: datetime


class LocationStatusOut(BaseModel):
    location: str
    status: Status
    reason: str


class ProviderDetailOut(ProviderOut):
    base_url: str
    docs_url: str | None
    keys_configured: int
    endpoints: list[EndpointOut]
    recent_changes: list[StatusChangeOut]
    # The TLS certificate of the provider's host (the soonest to expire); None until read.
    certificate: CertificateOut | None
    # Each probing location's own status (one entry, or none yet, without locations).
    locations: list[LocationStatusOut] = []


def provider_summary(spec: ProviderSpec, state: ProviderState, uptime: dict | None) -> dict:
    last = state.last_result
    return {
        "id": spec.id,
        "name": spec.name,
        "category": spec.category,
        "enabled": spec.enabled,
        "status": state.status,
        "reason": state.reason,
        "status_since": state.changed_at,
        "consecutive_failures": state.consecutive_failures,
        "last_outcome": last.outcome if last else None,
        "last_status_code": last.status_code if last else None,
        "last_latency_ms": round(last.latency_ms, 2) if last and last.latency_ms else None,
        "last_checked_at": last.started_at if last else None,
        "uptime_24h_pct": uptime["uptime_pct"] if uptime else None,
        "checks_24h": uptime["total"] if uptime else 0,
    }


def source_of(runtime: Runtime, provider_id: str) -> str:
    source = runtime.live.source(provider_id) if runtime.live is not None else None
    return source.value if source is not None else "file"


async def _uptimes(runtime: Runtime, session: AsyncSession) -> dict[str, dict]:
    """The last day's uptimes, or none while the database is away: the list of providers
    and their live status still answers, from memory."""
    database = runtime.dependencies.get("database")
    if database is not None and not database.should_try():
        return {}
    try:
        return await attempts.uptime(session, since=utcnow() - timedelta(hours=24))
    except (DBAPIError, OSError, TimeoutError) as error:
        if database is not None:
            database.failed(error)
        return {}


@router.get("/providers", response_model=list[ProviderOut], summary="Every provider's status")
async def list_providers(
    runtime: RuntimeDep,
    session: SessionDep,
    category: Category | None = None,
    status: Status | None = None,
    enabled: bool | None = None,
) -> list[dict]:
    uptimes = await _uptimes(runtime, session)
    out = []
    for spec in runtime.catalogue.providers.values():
        state = runtime.tracker.state(spec.id)
        if category is not None and spec.category is not category:
            continue
        if status is not None and state.status is not status:
            continue
        if enabled is not None and spec.enabled is not enabled:
            continue
        summary = provider_summary(spec, state, uptimes.get(spec.id))
        out.append({**summary, "source": source_of(runtime, spec.id)})
    return out


@router.get(
    "/providers/{provider_id}",
    response_model=ProviderDetailOut,
    summary="One provider: status, endpoints and recent status changes",
    responses=errors(**{"404": "Unknown provider"}),
)
async def get_provider(provider_id: str, runtime: RuntimeDep, session: SessionDep) -> dict:
    spec = known_provider(runtime, provider_id)
    uptimes = await attempts.uptime(session, since=utcnow() - timedelta(hours=24))
    changes = await status_changes.list_changes(session, provider=provider_id, limit=20)
    return {
        **provider_summary(spec, runtime.tracker.state(spec.id), uptimes.get(spec.id)),
        "source": source_of(runtime, spec.id),
        "base_url": spec.base_url,
        "docs_url": spec.docs_url,
        "keys_configured": runtime.engine.key_count(spec.id),
        "locations": [
            {"location": name, "status": status, "reason": reason}
            for name, (status, reason) in sorted(runtime.tracker.locations(spec.id).items())
        ],
        "endpoints": [
            {
                "name": name,
                "method": endpoint.method,
                "path": endpoint.path,
                "needs_key": spec.endpoint_needs_key(endpoint),
                "has_timestamp": endpoint.timestamp is not None,
            }
            for name, endpoint in spec.all_endpoints().items()
        ],
        "recent_changes": changes,
        "certificate": await provider_certificate(runtime, session, spec.id),
    }
