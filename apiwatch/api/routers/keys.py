"""API keys for apiwatch's own API (admin only): create (the key is shown once), list
(masked), change (active, limits) and delete."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Response
from pydantic import BaseModel, ConfigDict, Field

from apiwatch.api.deps import RuntimeDep

router = APIRouter(prefix="/api/keys", tags=["api keys"])

Limit = Field(default=None, ge=1, le=10**9)


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    scope: Literal["read", "admin"] = "read"
    minute_limit: int | None = Limit
    hour_limit: int | None = Limit
    day_limit: int | None = Limit


class KeyPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    active: bool | None = None
    name: str | None = Field(default=None, min_length=1, max_length=128)
    minute_limit: int | None = Limit
    hour_limit: int | None = Limit
    day_limit: int | None = Limit


def _check_id(key_id: int) -> None:
    if not 1 <= key_id <= 2**31 - 1:
        raise HTTPException(404, f"no API key with id {key_id}")


@router.post("", status_code=201, summary="Create a key; the full key is in this response only")
async def create_key(body: KeyIn, runtime: RuntimeDep) -> dict[str, Any]:
    row, key = await runtime.access.create(
        name=body.name,
        scope=body.scope,
        minute_limit=body.minute_limit,
        hour_limit=body.hour_limit,
        day_limit=body.day_limit,
    )
    return {**row, "key": key, "note": "Store this key now: apiwatch keeps only its hash."}


@router.get("", summary="Every key, masked, with its usage")
async def list_keys(runtime: RuntimeDep) -> dict[str, Any]:
    await runtime.access.flush_usage()
    return {"keys": await runtime.access.list()}


@router.patch("/{key_id}", summary="(De)activate a key, rename it or set its limits")
async def update_key(key_id: int, body: KeyPatch, runtime: RuntimeDep) -> dict[str, Any]:
    _check_id(key_id)
    # Only the fields the caller sent: an explicit null clears a limit back to the default.
    changes = body.model_dump(exclude_unset=True)
    if not changes:
        raise HTTPException(422, "give at least one of active, name, minute_limit, …")
    if changes.get("active") is None:
        changes.pop("active", None)
    if changes.get("name") is None:
        changes.pop("name", None)
    row = await runtime.access.update(key_id, changes)
    if row is None:
        raise HTTPException(404, f"no API key with id {key_id}")
    return row


@router.delete("/{key_id}", status_code=204, summary="Delete a key")
async def delete_key(key_id: int, runtime: RuntimeDep) -> Response:
    _check_id(key_id)
    if not await runtime.access.delete(key_id):
        raise HTTPException(404, f"no API key with id {key_id}")
    return Response(status_code=204)
