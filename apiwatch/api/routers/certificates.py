"""`GET /api/certificates`: the newest TLS certificate reading of every provider host, soonest
expiry first; `certificate_view` also gives `GET /api/providers/{id}` its `certificate`."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from apiwatch.alerting.rule_settings import CertificateRule
from apiwatch.api.contract import errors
from apiwatch.api.deps import RuntimeDep, SessionDep, known_provider
from apiwatch.domain import utcnow
from apiwatch.runtime import Runtime
from apiwatch.storage.repositories import certificates as cert_repo

router = APIRouter(prefix="/api", tags=["certificates"])


class CertificateOut(BaseModel):
    provider: str
    host: str
    port: int
    state: Literal["ok", "warning", "critical", "invalid", "unknown"] = Field(
        description="invalid: does not verify or cover the host name; critical and warning: "
        "days left at or below the tls_certificate alert rule's thresholds"
    )
    days_left: float | None = Field(description="Days until expires_at (negative: expired)")
    expires_at: datetime | None = Field(description="The earliest expiry in the chain")
    not_before: datetime | None
    not_after: datetime | None = Field(description="The leaf certificate's expiry")
    chain_not_after: datetime | None
    chain_source: Literal["verified", "presented", "leaf"] = Field(
        description="Which chain chain_not_after is from: the verified one, the one the "
        "server presented (verification failed), or the leaf alone"
    )
    verified: bool = Field(description="Whether the probe's TLS verification passed")
    host_matches: bool | None = Field(description="False: the certificate does not cover the host")
    subject: str
    issuer: str
    names: list[str] = Field(description="The leaf's subject alternative names")
    error: str = Field(description="Why verification failed; empty when it passed")
    checked_at: datetime = Field(description="When the certificate was read")
    updated_at: datetime


def _rule(runtime: Runtime) -> CertificateRule:
    alerts = runtime.alerts
    return alerts.settings.rules.tls_certificate if alerts is not None else CertificateRule()


def certificate_view(row: dict[str, Any], rule: CertificateRule, now: datetime) -> dict[str, Any]:
    expires = row["chain_not_after"] or row["not_after"]
    days = None if expires is None else round((expires - now).total_seconds() / 86400, 2)
    return {
        **row,
        "names": list(row["names"] or []),
        "expires_at": expires,
        "days_left": days,
        "state": rule.level(verified=row["verified"], days_left=days),
    }


async def provider_certificate(
    runtime: Runtime, session: Any, provider_id: str
) -> dict[str, Any] | None:
    """The provider's certificate with the soonest expiry (one host for most providers)."""
    rows = await cert_repo.list_certificates(session, provider=provider_id)
    return certificate_view(rows[0], _rule(runtime), utcnow()) if rows else None


@router.get(
    "/certificates",
    response_model=list[CertificateOut],
    summary="Every provider host's TLS certificate, soonest expiry first",
    description="The newest reading per provider, host and port (read from probes at most "
    "every APIWATCH_TLS_REFRESH_S). Sorted by days left; readings without an expiry last.",
    responses=errors(**{"404": "Unknown provider"}),
)
async def list_certificates(
    runtime: RuntimeDep, session: SessionDep, provider: str | None = None
) -> list[dict[str, Any]]:
    if provider is not None:
        known_provider(runtime, provider)
    rows = await cert_repo.list_certificates(session, provider=provider)
    rule, now = _rule(runtime), utcnow()
    return [certificate_view(row, rule, now) for row in rows]
