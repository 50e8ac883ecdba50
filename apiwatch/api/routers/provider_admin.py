"""Providers managed through the API: `POST /api/providers`, `PUT`, `PATCH` and `DELETE
/api/providers/{id}` (admin), and `GET /api/providers/{id}/changes` (read), the history.

A body is validated by the catalogue's own schema (`ProviderSpec`), read strictly as JSON
(`"5"` is not 5). What the schema states is answered with 422 naming each field's path; a
body the schema allows whose values cannot stand together (a check with two subjects, a
JSONPath that does not parse, a base URL that is not http(s)) with 400, naming the path
too. Precedence and the running side: `runtime/provider_admin.py`.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Path, Query, Request
from pydantic import BaseModel, ValidationError

from apiwatch.api.contract import errors
from apiwatch.api.deps import RuntimeDep, SessionDep
from apiwatch.catalogue.export import spec_document
from apiwatch.catalogue.loader import is_type_tag
from apiwatch.catalogue.schema import ProviderSpec
from apiwatch.runtime import Runtime
from apiwatch.runtime import provider_admin as admin
from apiwatch.storage.repositories import provider_specs as spec_repo

router = APIRouter(prefix="/api", tags=["providers"])

ProviderId = Annotated[str, Path(max_length=64)]


def _spec_schema(*, partial: bool) -> dict[str, Any]:
    """`ProviderSpec` as JSON Schema, with what pydantic leaves out (the seconds of an
    `every` window are written as digits); `partial`: every field but `id` optional."""
    schema = ProviderSpec.model_json_schema(ref_template="#/components/schemas/{model}")
    every = schema["$defs"]["RateLimits"]["properties"]["every"]
    every["propertyNames"] = {"pattern": "^[0-9]{1,8}$"}
    if partial:
        schema["properties"].pop("id")
        schema.pop("required", None)
        schema["minProperties"] = 1
        schema["title"] = "ProviderPatch"
    return {"required": True, "content": {"application/json": {"schema": schema}}}


class ProviderDefinitionOut(BaseModel):
    """A provider's definition as the running catalogue has it, and where it came from."""

    id: str
    source: str
    spec: dict[str, Any]


class ProviderDeletedOut(BaseModel):
    id: str
    # The file's definition that runs again after an override was deleted; null when the
    # provider is gone.
    source: str | None


class ProviderChangeOut(BaseModel):
    id: int
    provider: str
    action: str
    key_id: int | None
    key_name: str
    at: datetime
    diff: list[dict[str, Any]]
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def _whole_numbers(value: Any) -> Any:
    # JSON Schema's integer includes 5.0; the strict reading wants 5.
    if isinstance(value, float) and value.is_integer() and math.isfinite(value):
        return int(value)
    if isinstance(value, dict):
        return {key: _whole_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(item) for item in value]
    return value


def validate(data: dict[str, Any]) -> ProviderSpec:
    """The body as a spec, or 422 (against the schema) / 400 (values that cannot stand
    together), each error naming its field's path."""
    try:
        return ProviderSpec.model_validate_json(
            json.dumps(_whole_numbers(data)), strict=True, by_name=False
        )
    except ValidationError as exc:
        found = [
            {
                "loc": ["body", *(p for p in error["loc"] if not is_type_tag(p))],
                "msg": error["msg"].removeprefix("Value error, "),
                "type": error["type"],
            }
            for error in exc.errors()
        ]
    if all(error["type"] == "value_error" for error in found):
        detail = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'][1:]) or '(provider)'}: {error['msg']}"
            for error in found
        )
        raise HTTPException(400, detail)
    raise HTTPException(422, found)


def _author(request: Request) -> admin.Author:
    key = getattr(request.state, "api_key", None)
    return admin.Author(key_id=getattr(key, "id", None), name=getattr(key, "name", "anonymous"))


def _definition(runtime: Runtime, provider_id: str) -> dict[str, Any]:
    spec = runtime.catalogue.providers[provider_id]
    source = runtime.live.source(provider_id) if runtime.live else None
    return {
        "id": spec.id,
        "source": source.value if source else "file",
        "spec": spec_document(spec),
    }


async def _run(call: Any) -> Any:
    try:
        return await call
    except admin.ProviderMissing as error:
        raise HTTPException(404, f"unknown provider {error.args[0]!r}") from error
    except admin.ProviderConflict as error:
        raise HTTPException(409, str(error)) from error
    except admin.ProviderRefused as error:
        raise HTTPException(400, str(error)) from error


CONFLICT = {
    "409": "The provider is defined in a catalogue file and overrides are off "
    "(APIWATCH_PROVIDER_OVERRIDES), or it exists already (POST)"
}
INVALID = {"400": "Field values the schema allows that cannot stand together (the body names them)"}


@router.post(
    "/providers",
    status_code=201,
    response_model=ProviderDefinitionOut,
    summary="Add a provider (validated like a catalogue file); it is probed without a restart",
    responses=errors(**INVALID, **CONFLICT),
    openapi_extra={"requestBody": _spec_schema(partial=False)},
)
async def create_provider(
    request: Request, runtime: RuntimeDep, body: dict[str, Any] = Body()
) -> dict[str, Any]:
    spec = validate(body)
    await _run(admin.create(runtime, spec, _author(request)))
    return _definition(runtime, spec.id)


@router.put(
    "/providers/{provider_id}",
    response_model=ProviderDefinitionOut,
    summary="Replace a provider's definition",
    description="The whole spec, as a catalogue file holds it; its `id` must be the path's "
    "(else 400). A provider from a catalogue file answers 409 unless overrides are allowed; "
    "then the definition sent overrides the file's (`source: api-override`).",
    responses=errors(**INVALID, **CONFLICT, **{"404": "Unknown provider"}),
    openapi_extra={"requestBody": _spec_schema(partial=False)},
)
async def replace_provider(
    provider_id: ProviderId, request: Request, runtime: RuntimeDep, body: dict[str, Any] = Body()
) -> dict[str, Any]:
    spec = validate(body)
    if spec.id != provider_id:
        raise HTTPException(400, f"id: the body's id {spec.id!r} is not the path's {provider_id!r}")
    await _run(
        admin.change(runtime, provider_id, lambda current: spec, "replace", _author(request))
    )
    return _definition(runtime, provider_id)


@router.patch(
    "/providers/{provider_id}",
    response_model=ProviderDefinitionOut,
    summary="Change some of a provider's fields (endpoints, limits, checks, interval, enabled)",
    description='Each top-level field given replaces the current one (`{"enabled": false}` '
    'disables the provider, `{"rate_limits": {...}}` replaces its limits); the result is '
    "validated as a whole. File providers: as for PUT.",
    responses=errors(**INVALID, **CONFLICT, **{"404": "Unknown provider"}),
    openapi_extra={"requestBody": _spec_schema(partial=True)},
)
async def patch_provider(
    provider_id: ProviderId, request: Request, runtime: RuntimeDep, body: dict[str, Any] = Body()
) -> dict[str, Any]:
    if "id" in body:
        raise HTTPException(
            422, [{"loc": ["body", "id"], "msg": "the id cannot change", "type": "extra_forbidden"}]
        )

    def patched(current: ProviderSpec) -> ProviderSpec:
        return validate({**spec_document(current), **body})

    if not body:
        raise HTTPException(
            422, [{"loc": ["body"], "msg": "send at least one field", "type": "too_short"}]
        )
    await _run(admin.change(runtime, provider_id, patched, "patch", _author(request)))
    return _definition(runtime, provider_id)


@router.delete(
    "/providers/{provider_id}",
    response_model=ProviderDeletedOut,
    summary="Delete a provider added through the API, or an override",
    description="Its jobs stop at once; its stored results stay. Deleting an override brings "
    "the file's definition back (`source` says which). A provider from a catalogue file "
    "answers 409.",
    responses=errors(
        **{
            "404": "Unknown provider",
            "409": "The provider is defined in a catalogue file (or is an override while "
            "overrides are off)",
        }
    ),
)
async def delete_provider(
    provider_id: ProviderId, request: Request, runtime: RuntimeDep
) -> dict[str, Any]:
    restored = await _run(admin.delete(runtime, provider_id, _author(request)))
    return {"id": provider_id, "source": restored.value if restored else None}


@router.get(
    "/providers/{provider_id}/changes",
    response_model=list[ProviderChangeOut],
    summary="Who changed the provider through the API, when and what, newest first",
    description="Each change names the API key (id and name, never the key), the action "
    "(`create`, `replace`, `patch`, `delete`), the changed field paths with their values "
    "before and after, and the whole definition before and after. A deleted provider's "
    "history stays readable.",
    responses=errors(**{"404": "A provider neither running nor ever changed through the API"}),
)
async def provider_changes(
    provider_id: ProviderId,
    runtime: RuntimeDep,
    session: SessionDep,
    limit: int = Query(default=100, ge=1, le=1000),
) -> list[dict[str, Any]]:
    rows = await spec_repo.list_changes(session, provider=provider_id, limit=limit)
    if not rows and runtime.provider(provider_id) is None:
        raise HTTPException(404, f"unknown provider {provider_id!r}")
    return rows
