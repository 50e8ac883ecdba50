"""Alerts: active and past alerts, acknowledge, incident reports, settings and silences."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query, Request, Response
from pydantic import ConfigDict, Field, model_validator

from apiwatch.alerting.config import AlertSettings
from apiwatch.api.contract import StrictBody, body_schema, errors
from apiwatch.api.deps import Moment, RuntimeDep, as_utc
from apiwatch.domain import Severity, utcnow

router = APIRouter(prefix="/api", tags=["alerts"])


def settings_body() -> dict[str, Any]:
    """The settings patch as the schema states it: any part of the settings (every field
    optional), at least one field."""
    schema = AlertSettings.model_json_schema(ref_template="#/components/schemas/{model}")
    channel = schema["properties"]["channels"]["additionalProperties"]
    schema["properties"]["channels"]["additionalProperties"] = {
        "anyOf": [channel, {"type": "null"}]
    }
    return {
        "required": True,
        "content": {"application/json": {"schema": {**schema, "minProperties": 1}}},
    }


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


@router.get(
    "/alerts/history",
    summary="Past alerts: fired, sent, acknowledged and resolved",
    description="400 when `until` is not after `since`.",
    responses=errors(400),
)
async def alert_history(
    runtime: RuntimeDep,
    severity: Severity | None = None,
    provider: str | None = Query(default=None, max_length=64),
    rule: str | None = Query(default=None, max_length=128),
    since: Moment | None = None,
    until: Moment | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
    offset: int = Query(default=0, ge=0, le=10**9),
) -> dict[str, Any]:
    end = as_utc(until)
    # A week back from `until` (or now) unless `since` says otherwise.
    start = as_utc(since) or (end or utcnow()) - timedelta(days=7)
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


class AckIn(StrictBody):
    by: str | None = Field(default=None, min_length=1, max_length=128)
    comment: str | None = Field(default=None, max_length=1000)


@router.post(
    "/alerts/{alert_id:int}/acknowledge",
    summary="Acknowledge: it stops repeating",
    responses=errors(404),
)
async def acknowledge(
    alert_id: int, request: Request, runtime: RuntimeDep, body: AckIn | None = None
) -> dict[str, Any]:
    _check_id(alert_id, "alert")
    alert = await runtime.alerts.acknowledge(alert_id, by=_who(request, body.by if body else None))
    if alert is None:
        raise HTTPException(404, f"no alert with id {alert_id}")
    return alert


@router.get(
    "/alerts/{alert_id:int}/report",
    summary="The incident report for an alert's group",
    responses=errors(404),
)
async def report(alert_id: int, runtime: RuntimeDep) -> dict[str, Any]:
    _check_id(alert_id, "alert")
    found = await runtime.alerts.report(alert_id)
    if found is None:
        raise HTTPException(404, f"no alert with id {alert_id}")
    return found


@router.post(
    "/alerts/{alert_id:int}/explain",
    summary="Ask the configured LLM for a report now",
    responses=errors(404, 409, **{"502": "The LLM gave no usable answer"}),
)
async def explain(alert_id: int, runtime: RuntimeDep) -> dict[str, Any]:
    _check_id(alert_id, "alert")
    try:
        found = await runtime.alerts.explain(alert_id)
    except LookupError as error:
        raise HTTPException(409, str(error)) from error
    except RuntimeError as error:
        raise HTTPException(502, str(error)) from error
    if found is None:
        raise HTTPException(404, f"no alert with id {alert_id}")
    return found


@router.get("/alerts/settings", summary="Thresholds, windows, channels (masked) and routes")
async def get_settings(runtime: RuntimeDep) -> dict[str, Any]:
    return runtime.alerts.settings_view()


@router.put(
    "/alerts/settings",
    summary="Change thresholds, windows, channels or routes",
    description="The body is merged over the current settings (mappings key by key, lists "
    "whole, `null` for a channel removes it). 400 when the merged settings are not valid: "
    "the body says which field and why.",
    responses=errors(400),
    openapi_extra={"requestBody": settings_body()},
)
async def put_settings(
    runtime: RuntimeDep, patch: dict[str, Any] = Body(min_length=1)
) -> dict[str, Any]:
    try:
        return await runtime.alerts.update_settings(patch)
    except ValueError as error:
        raise HTTPException(400, str(error)) from error


class Matchers(StrictBody):
    """What a silence mutes: alerts whose fields equal all of these."""

    model_config = ConfigDict(json_schema_extra=body_schema(min_properties=1))

    rule: str = Field(default=None, min_length=1, max_length=128)
    provider: str = Field(default=None, min_length=1, max_length=64)
    severity: str = Field(default=None, min_length=1, max_length=32)
    category: str = Field(default=None, min_length=1, max_length=64)
    fingerprint: str = Field(default=None, min_length=1, max_length=128)

    @model_validator(mode="after")
    def _something(self) -> Matchers:
        if not self.model_fields_set:
            raise ValueError("give at least one of rule, provider, severity, category, fingerprint")
        return self


def _one_end(schema: dict[str, Any], cls: type) -> None:
    body_schema()(schema, cls)
    schema["oneOf"] = [{"required": ["ends_at"]}, {"required": ["duration_s"]}]


class SilenceIn(StrictBody):
    # Exactly one of ends_at and duration_s; neither may be null.
    model_config = ConfigDict(json_schema_extra=_one_end)

    matchers: Matchers
    starts_at: Moment = Field(default=None, strict=False)
    ends_at: Moment = Field(default=None, strict=False)
    # At least a second: a shorter silence mutes nothing (and rounds to none at all).
    duration_s: float = Field(default=None, ge=1, le=90 * 86400)
    created_by: str = Field(default=None, min_length=1, max_length=128)
    comment: str = Field(default="", max_length=1000)

    @model_validator(mode="after")
    def _window(self) -> SilenceIn:
        if ("ends_at" in self.model_fields_set) == ("duration_s" in self.model_fields_set):
            raise ValueError("give either ends_at or duration_s")
        return self


SILENCE_LINKS = {
    "DeleteSilence": {
        "operationId": "delete_silence",
        "parameters": {"silence_id": "$response.body#/id"},
    }
}


@router.post(
    "/silences",
    status_code=201,
    operation_id="create_silence",
    summary="Mute matching alerts for a period",
    description="400 when `ends_at` is not after `starts_at` (default: now).",
    responses={201: {"description": "The silence", "links": SILENCE_LINKS}} | errors(400),
)
async def create_silence(body: SilenceIn, request: Request, runtime: RuntimeDep) -> dict[str, Any]:
    starts = as_utc(body.starts_at) or utcnow()
    if body.duration_s is not None:
        ends = starts + timedelta(seconds=body.duration_s)
    else:
        ends = as_utc(body.ends_at)
    assert ends is not None
    if ends <= starts:
        raise HTTPException(400, "ends_at must be after starts_at")
    return await runtime.alerts.create_silence(
        matchers=body.matchers.model_dump(exclude_unset=True),
        starts_at=starts,
        ends_at=ends,
        created_by=_who(request, body.created_by),
        comment=body.comment,
    )


@router.get("/silences", summary="Silences; active ones first")
async def list_silences(runtime: RuntimeDep) -> dict[str, Any]:
    return {"silences": await runtime.alerts.list_silences()}


@router.delete(
    "/silences/{silence_id:int}",
    status_code=204,
    operation_id="delete_silence",
    summary="End a silence now",
    description="The silence keeps its row with `ends_at` set to now, so the time it "
    "covered stays excluded from the SLO figures; one that has not started yet is removed. "
    "404 when there is no such silence or it has already ended.",
    responses=errors(404),
)
async def delete_silence(silence_id: int, runtime: RuntimeDep) -> Response:
    _check_id(silence_id, "silence")
    outcome = await runtime.alerts.end_silence(silence_id)
    if outcome == "missing":
        raise HTTPException(404, f"no silence with id {silence_id}")
    if outcome == "already_ended":
        raise HTTPException(404, f"silence {silence_id} has already ended")
    return Response(status_code=204)
