"""FastAPI dependencies: the running monitor and a database session per request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request
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


def as_utc(value: datetime | None, name: str) -> datetime | None:
    """A time without an offset is read as UTC, the zone everything here is stored in."""
    if value is None:
        return None
    try:
        moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError as exc:
        raise HTTPException(422, f"{name} is out of range once converted to UTC") from exc
    # Times are used in arithmetic (ranges, windows, silences): years near 1 or 9999 would
    # overflow there, and nothing apiwatch stores lies outside these bounds.
    if not EARLIEST <= moment <= LATEST:
        raise HTTPException(
            422, f"{name} must lie between {EARLIEST.year} and {LATEST.year - 1} (UTC)"
        )
    return moment


EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
