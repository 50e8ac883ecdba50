"""Maintenance windows: plan, list, change and delete them (`alerting.maintenance`).

The schema states what it can (an IANA time zone, a cron expression, a 24-hour time, a
duration of at least a second), so breaking it is a 422 naming the field; what only the
values together can say (an end before its start, a one-off window without its end, a cron
expression no date matches) is a 400 whose text starts with the field. Windows from the
maintenance file are read-only here (409).
"""

from __future__ import annotations

import zoneinfo
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Request, Response
from pydantic import ConfigDict, Field, model_validator

from apiwatch.alerting.maintenance import MAX_DURATION_S, MaintenanceError, ReadOnlyWindow
from apiwatch.api.contract import StrictBody, body_schema, errors, integer
from apiwatch.api.deps import Moment, RuntimeDep, as_utc
from apiwatch.api.routers.alerts import Matchers, _who

router = APIRouter(prefix="/api", tags=["maintenance"])


def _cron_field(value: str) -> str:
    item = rf"(?:\*|(?:{value})(?:-(?:{value}))?)(?:/[1-9][0-9]?)?"
    return rf"{item}(?:,{item}){{0,9}}"


# Five fields (minute hour day-of-month month weekday) of numbers, ranges, lists and steps,
# each within its field's bounds: every string this admits is one croniter reads.
CRON_PATTERN = (
    "^"
    + " ".join(
        f"(?:{_cron_field(v)})"
        for v in (
            r"[0-5]?[0-9]",
            r"[01]?[0-9]|2[0-3]",
            r"0?[1-9]|[12][0-9]|3[01]",
            r"0?[1-9]|1[0-2]",
            r"[0-7]",
        )
    )
    + "$"
)
TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
ID_PATTERN = r"^(?:[1-9][0-9]{0,9}|file:[A-Za-z0-9][A-Za-z0-9_.-]{0,63})$"
TimeZone = Literal[tuple(sorted(zoneinfo.available_timezones() | {"UTC"}))]  # type: ignore[valid-type]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WindowId = Annotated[str, Path(pattern=ID_PATTERN, description="`12`, or `file:NAME`")]
Duration = integer(ge=1, le=MAX_DURATION_S)


class Daily(StrictBody):
    every: Literal["daily"]
    at: str = Field(pattern=TIME_PATTERN, description="Local time, 24 h: 02:30")


class Weekly(StrictBody):
    every: Literal["weekly"]
    at: str = Field(pattern=TIME_PATTERN)
    weekdays: list[Weekday] = Field(min_length=1, max_length=7)


class Monthly(StrictBody):
    every: Literal["monthly"]
    at: str = Field(pattern=TIME_PATTERN)
    day: integer(ge=1, le=31) = Field(  # type: ignore[valid-type]
        description="Day of the month; one the month lacks means its last day"
    )


class Cron(StrictBody):
    every: Literal["cron"]
    cron: str = Field(pattern=CRON_PATTERN, max_length=200, description="0 2 * * 1-5")


Recurrence = Annotated[Daily | Weekly | Monthly | Cron, Field(discriminator="every")]


class WindowIn(StrictBody):
    """A window: one-off (starts_at and ends_at or duration_s) or recurring (recurrence and
    duration_s; starts_at and ends_at then bound when it applies)."""

    model_config = ConfigDict(json_schema_extra=body_schema())

    title: str = Field(min_length=1, max_length=200)
    message: str = Field(default="", max_length=2000)
    matchers: Matchers
    timezone: TimeZone = Field(default="UTC", description="IANA time zone of `recurrence`")
    starts_at: Moment = Field(default=None, strict=False)
    ends_at: Moment = Field(default=None, strict=False)
    duration_s: Duration = Field(default=None)  # type: ignore[valid-type]
    recurrence: Recurrence = Field(default=None)


class WindowPatch(StrictBody):
    """Any fields of a window; null clears an optional one."""

    model_config = ConfigDict(json_schema_extra=body_schema(min_properties=1))

    title: str = Field(default=None, min_length=1, max_length=200)
    message: str = Field(default=None, max_length=2000)
    matchers: Matchers = Field(default=None)
    timezone: TimeZone = Field(default=None)
    starts_at: Moment | None = Field(default=None, strict=False)
    ends_at: Moment | None = Field(default=None, strict=False)
    duration_s: Duration | None = Field(default=None)  # type: ignore[valid-type]
    recurrence: Recurrence | None = Field(default=None)

    @model_validator(mode="after")
    def _something(self) -> WindowPatch:
        if not self.model_fields_set:
            raise ValueError("give at least one field to change")
        return self


def _fields(body: WindowIn | WindowPatch) -> dict[str, Any]:
    out = {}
    for name in body.model_fields_set:
        value = getattr(body, name)
        if name == "matchers":
            value = value.model_dump(exclude_unset=True)
        elif name == "recurrence" and value is not None:
            value = value.model_dump()
        elif name in ("starts_at", "ends_at"):
            value = as_utc(value)
        out[name] = value
    return out


def _refuse(error: Exception) -> HTTPException:
    if isinstance(error, MaintenanceError):
        return HTTPException(400, f"{error.field}: {error}")
    return HTTPException(409, str(error))


_CONTRADICTIONS = (
    "400 when values contradict each other (an end before its start, a one-off window "
    "with neither ends_at nor duration_s, a recurring one without duration_s, a cron "
    "expression no date matches): the text starts with the field."
)


LINKS = {
    name: {"operationId": op, "parameters": {"window_id": "$response.body#/id"}}
    for name, op in (
        ("GetWindow", "get_maintenance_window"),
        ("ReplaceWindow", "replace_maintenance_window"),
        ("PatchWindow", "patch_maintenance_window"),
        ("DeleteWindow", "delete_maintenance_window"),
    )
}


@router.post(
    "/maintenance",
    status_code=201,
    operation_id="create_maintenance_window",
    summary="Plan a maintenance window (one-off or recurring)",
    description=_CONTRADICTIONS,
    responses={201: {"description": "The window", "links": LINKS}} | errors(400),
)
async def create_window(body: WindowIn, request: Request, runtime: RuntimeDep) -> dict[str, Any]:
    try:
        return await runtime.alerts.create_maintenance(_fields(body), by=_who(request, None))
    except MaintenanceError as error:
        raise _refuse(error) from error


@router.get(
    "/maintenance",
    summary="Maintenance windows: the file's and the API's, which are active and upcoming",
    description="`active`: ids of the windows in force now; `upcoming`: ids of those whose "
    "next occurrence starts within 7 days.",
)
async def list_windows(runtime: RuntimeDep) -> dict[str, Any]:
    windows = await runtime.alerts.list_maintenance()
    return {
        "windows": windows,
        "active": [w["id"] for w in windows if w["active"]],
        "upcoming": [w["id"] for w in windows if w["upcoming"]],
    }


@router.get(
    "/maintenance/{window_id}",
    operation_id="get_maintenance_window",
    summary="One maintenance window",
    responses=errors(404),
)
async def get_window(window_id: WindowId, runtime: RuntimeDep) -> dict[str, Any]:
    found = await runtime.alerts.get_maintenance(window_id)
    if found is None:
        raise HTTPException(404, f"no maintenance window {window_id}")
    return found


async def _change(runtime: Any, window_id: str, fields: dict[str, Any], *, whole: bool) -> Any:
    try:
        found = await runtime.alerts.change_maintenance(window_id, fields, whole=whole)
    except (MaintenanceError, ReadOnlyWindow) as error:
        raise _refuse(error) from error
    if found is None:
        raise HTTPException(404, f"no maintenance window {window_id}")
    return found


@router.put(
    "/maintenance/{window_id}",
    operation_id="replace_maintenance_window",
    summary="Replace a maintenance window",
    description=_CONTRADICTIONS + " 409 for a window of the maintenance file.",
    responses=errors(400, 404, 409),
)
async def replace_window(window_id: WindowId, body: WindowIn, runtime: RuntimeDep) -> Any:
    return await _change(runtime, window_id, _fields(body), whole=True)


@router.patch(
    "/maintenance/{window_id}",
    operation_id="patch_maintenance_window",
    summary="Change some fields of a maintenance window",
    description=_CONTRADICTIONS + " 409 for a window of the maintenance file.",
    responses=errors(400, 404, 409),
)
async def patch_window(window_id: WindowId, body: WindowPatch, runtime: RuntimeDep) -> Any:
    return await _change(runtime, window_id, _fields(body), whole=False)


@router.delete(
    "/maintenance/{window_id}",
    operation_id="delete_maintenance_window",
    status_code=204,
    summary="Delete a maintenance window",
    description="Its time is no longer left out of the SLO figures either. 409 for a window "
    "of the maintenance file.",
    responses=errors(404, 409),
)
async def delete_window(window_id: WindowId, runtime: RuntimeDep) -> Response:
    try:
        deleted = await runtime.alerts.delete_maintenance(window_id)
    except ReadOnlyWindow as error:
        raise _refuse(error) from error
    if not deleted:
        raise HTTPException(404, f"no maintenance window {window_id}")
    return Response(status_code=204)
