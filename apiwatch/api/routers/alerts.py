"""Alerts: active and past alerts, acknowledge, incident reports, settings and silences."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from apiwatch.api.deps import RuntimeDep, as_utc
from apiwatch.domain import Severity, utcnow

router = APIRouter(prefix="/api", tags=["alerts"])

Id = Annotated[int, Field(ge=1, le=2**31 - 1)]


def _who(request: Request, given: str | None) -> str:
    """Who did it: the name given, else the API key's name, else `anonymous`."""
    if given:
        return given
    key = getattr(request.state, "api_key", None)
    return getattr(key, "name", None) or "anonymous"


def _check_id(value: int, what: str) -> None:
    if not 1 <= value <= 2**31 - 1:
        raise HTTPException(404, f"no {what} with id {value}")


@router.get("/alerts", summary="Active (firing) alerts, filtered by severity, provider, rule")
async def active_alerts(
    runtime: RuntimeDep,
    severity: Severity | None = None,
    provider: str | None = Query(default=None, max_length=64),
    rule: str | None = Query(default=None, max_length=128),
    limit: int = Query(default=100, ge=1, le=1000),
) -> dict[str, Any]:
    alerts = await runtime.alerts.list_alerts(
        state="firing",
        severity=severity.value if severity else None,
        provider=provider,
        rule=rule,
        limit=limit,
    )
    return {"alerts": alerts, "count": len(alerts)}


@router.get("/alerts/history", summary="Past alerts: fired, sent, acknowledged and resolved")
async def alert_history(
    runtime: RuntimeDep,
    severity: Severity | None = None,
    provider: str | None = Query(default=None, max_length=64),
    rule: str | None = Query(default=None, max_length=128),
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
    offset: int = Query(default=0, ge=0, le=10**9),
) -> dict[str, Any]:
    start = as_utc(since, "since") or utcnow() - timedelta(days=7)
    end = as_utc(until, "until")
    if end is not None and end <= start:
        raise HTTPException(400, "until must be after since")
    alerts = await runtime.alerts.list_alerts(
        severity=severity.value if severity else None,
        provider=provider,
        rule=rule,
        since=start,
        until=end,
        limit=limit,
        offset=offset,
    )
    return {"alerts": alerts, "since": start, "until": end}


class AckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: str | None = Field(default=None, min_length=1, max_length=128)
    comment: str | None = Field(default=None, max_length=1000)


@router.post("/alerts/{alert_id}/acknowledge", summary="Acknowledge: it stops repeating")
async def acknowledge(
    alert_id: int, request: Request, runtime: RuntimeDep, body: AckIn | None = None
) -> dict[str, Any]:
    _check_id(alert_id, "alert")
    alert = await runtime.alerts.acknowledge(alert_id, by=_who(request, body.by if body else None))
    if alert is None:
        raise HTTPException(404, f"no alert with id {alert_id}")
    return alert


@router.get("/alerts/{alert_id}/report", summary="The incident report for an alert's group")
async def report(alert_id: int, runtime: RuntimeDep) -> dict[str, Any]:
    _check_id(alert_id, "alert")
    found = await runtime.alerts.report(alert_id)
    if found is None:
        raise HTTPException(404, f"no alert with id {alert_id}")
    return found


@router.get("/alerts/settings", summary="Thresholds, windows, channels (masked) and routes")
async def get_settings(runtime: RuntimeDep) -> dict[str, Any]:
    return runtime.alerts.settings_view()


@router.put("/alerts/settings", summary="Change thresholds, windows, channels or routes")
async def put_settings(patch: dict[str, Any], runtime: RuntimeDep) -> dict[str, Any]:
    try:
        return await runtime.alerts.update_settings(patch)
    except ValueError as error:
        raise HTTPException(422, str(error)) from error


class SilenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    matchers: dict[str, str] = Field(min_length=1)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    duration_s: float | None = Field(default=None, gt=0, le=90 * 86400)
    created_by: str | None = Field(default=None, min_length=1, max_length=128)
    comment: str = Field(default="", max_length=1000)

    @model_validator(mode="after")
    def _window(self) -> SilenceIn:
        allowed = {"rule", "provider", "severity", "category"}
        unknown = set(self.matchers) - allowed
        if unknown:
            raise ValueError(f"unknown matcher(s) {sorted(unknown)}; use any of {sorted(allowed)}")
        if (self.ends_at is None) == (self.duration_s is None):
            raise ValueError("give either ends_at or duration_s")
        return self


@router.post("/silences", status_code=201, summary="Mute matching alerts for a period")
async def create_silence(body: SilenceIn, request: Request, runtime: RuntimeDep) -> dict[str, Any]:
    starts = as_utc(body.starts_at, "starts_at") or utcnow()
    if body.duration_s is not None:
        ends = starts + timedelta(seconds=body.duration_s)
    else:
        ends = as_utc(body.ends_at, "ends_at")
    assert ends is not None
    if ends <= starts:
        raise HTTPException(400, "ends_at must be after starts_at")
    return await runtime.alerts.create_silence(
        matchers=body.matchers,
        starts_at=starts,
        ends_at=ends,
        created_by=_who(request, body.created_by),
        comment=body.comment,
    )


@router.get("/silences", summary="Silences; active ones first")
async def list_silences(runtime: RuntimeDep) -> dict[str, Any]:
    return {"silences": await runtime.alerts.list_silences()}


@router.delete("/silences/{silence_id}", status_code=204, summary="End a silence now")
async def delete_silence(silence_id: int, runtime: RuntimeDep) -> Response:
    _check_id(silence_id, "silence")
    if not await runtime.alerts.delete_silence(silence_id):
        raise HTTPException(404, f"no silence with id {silence_id}")
    return Response(status_code=204)
