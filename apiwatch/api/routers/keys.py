"""API keys for apiwatch's own API (admin only): create (the key is shown once), list
(masked), change (active, limits) and delete."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import ConfigDict, Field, model_validator

from apiwatch.api.contract import StrictBody, body_schema, errors, integer
from apiwatch.api.deps import RuntimeDep

router = APIRouter(prefix="/api/keys", tags=["api keys"])

# A key's own limit per window; null: the server's default.
Limit = integer(ge=1, le=10**9)


class KeyIn(StrictBody):
    name: str = Field(min_length=1, max_length=128)
    scope: Literal["read", "admin"] = "read"
    minute_limit: Limit | None = None
    hour_limit: Limit | None = None
    day_limit: Limit | None = None


class KeyPatch(StrictBody):
    # At least one field; `active` and `name` may be left out but not nulled, while a null
    # limit clears it back to the default.
    model_config = ConfigDict(json_schema_extra=body_schema(min_properties=1))

    active: bool = Field(default=None)
    name: str = Field(default=None, min_length=1, max_length=128)
    minute_limit: Limit | None = None
    hour_limit: Limit | None = None
    day_limit: Limit | None = None

    @model_validator(mode="after")
    def _something(self) -> KeyPatch:
        if not self.model_fields_set:
            raise ValueError(
                "give at least one of active, name, minute_limit, hour_limit, day_limit"
            )
        return self


def _check_id(key_id: int, request: Request) -> None:
    if not 1 <= key_id <= 2**31 - 1:
        raise HTTPException(404, f"no API key with id {key_id}")
    # A key that deactivates, deletes or limits itself locks its holder out (with one admin
    # key, everyone): another admin key must do it.
    own = getattr(request.state, "api_key", None)
    if own is not None and own.id == key_id:
        raise HTTPException(409, OWN_KEY)


OWN_KEY = "this is the key the request is made with; change or delete it with another admin key"


# The stateful fuzzer (and any client) follows these from a created key to its other routes.
KEY_LINKS = {
    "UpdateKey": {"operationId": "update_key", "parameters": {"key_id": "$response.body#/id"}},
    "DeleteKey": {"operationId": "delete_key", "parameters": {"key_id": "$response.body#/id"}},
    "KeyUsage": {"operationId": "key_usage", "parameters": {"key_id": "$response.body#/id"}},
}


@router.post(
    "",
    status_code=201,
    operation_id="create_key",
    summary="Create a key; the full key is in this response only",
    responses={201: {"description": "The new key, in full this once", "links": KEY_LINKS}},
)
async def create_key(body: KeyIn, runtime: RuntimeDep) -> dict[str, Any]:
    row, key = await runtime.access.create(
        name=body.name,
        scope=body.scope,
        minute_limit=body.minute_limit,
        hour_limit=body.hour_limit,
        day_limit=body.day_limit,
    )
    return {**row, "key": key, "note": "Store this key now: apiwatch keeps only its hash."}


@router.get("", operation_id="list_keys", summary="Every key, masked, with its usage")
async def list_keys(runtime: RuntimeDep) -> dict[str, Any]:
    await runtime.access.flush_usage()
    return {"keys": await runtime.access.list()}


@router.patch(
    "/{key_id:int}",
    operation_id="update_key",
    summary="(De)activate a key, rename it or set its limits",
    responses=errors(404, **{"409": "The key of this request: another admin key must change it"}),
)
async def update_key(
    key_id: int, body: KeyPatch, request: Request, runtime: RuntimeDep
) -> dict[str, Any]:
    _check_id(key_id, request)
    # Only the fields the caller sent: an explicit null clears a limit back to the default.
    changes = body.model_dump(exclude_unset=True)
    row = await runtime.access.update(key_id, changes)
    if row is None:
        raise HTTPException(404, f"no API key with id {key_id}")
    return row


@router.delete(
    "/{key_id:int}",
    status_code=204,
    operation_id="delete_key",
    summary="Delete a key",
    responses=errors(404, **{"409": "The key of this request: another admin key must delete it"}),
)
async def delete_key(key_id: int, request: Request, runtime: RuntimeDep) -> Response:
    _check_id(key_id, request)
    if not await runtime.access.delete(key_id):
        raise HTTPException(404, f"no API key with id {key_id}")
    return Response(status_code=204)
