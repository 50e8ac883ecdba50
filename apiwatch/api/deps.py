"""FastAPI dependencies: the running monitor and a database session per request."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Response
from pydantic import BeforeValidator
from sqlalchemy.ext.asyncio import AsyncSession

from apiwatch.catalogue.schema import ProviderSpec
from apiwatch.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    async with runtime.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


def known_provider(runtime: Runtime, provider_id: str) -> ProviderSpec:
    spec = runtime.provider(provider_id)
    if spec is None:
        known = ", ".join(sorted(runtime.catalogue.providers))
        raise HTTPException(404, f"unknown provider {provider_id!r}; known: {known}")
    return spec


_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


def _date_time_only(value: Any) -> Any:
    # pydantic also reads a number as seconds since 1970; the schema says `date-time`.
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise ValueError("expected an ISO 8601 date-time such as 2026-01-31T12:00:00Z")
    return value


# Every time a request carries: what the schema's `format: date-time` says, nothing else.
Moment = Annotated[datetime, BeforeValidator(_date_time_only)]


def as_utc(value: datetime | None) -> datetime | None:
    """A time without an offset is read as UTC, the zone everything here is stored in.

    Times are used in arithmetic (ranges, windows, silences), where years near 1 or 9999
    would overflow; nothing apiwatch stores lies outside EARLIEST..LATEST, so a time beyond
    them means the same as the bound and is read as it (any date-time the schema allows
    is accepted)."""
    if value is None:
        return None
    try:
        moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        return EARLIEST if value.year < 5000 else LATEST
    return min(max(moment, EARLIEST), LATEST)


EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def _encode_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def json_response(data: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> Response:
    """Plain data (str enums, datetimes) as JSON, without `jsonable_encoder`'s walk of every
    value: a thousand-card overview encodes in tens of milliseconds instead of hundreds."""
    body = json.dumps(data, default=_encode_default, separators=(",", ":"), allow_nan=False)
    return Response(body, media_type="application/json", headers=dict(headers or {}))
