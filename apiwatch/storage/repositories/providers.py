"""The `providers` table: syncing the catalogue into it and listing it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from apiwatch.domain import utcnow
from apiwatch.storage.models import Provider
from apiwatch.storage.repositories._rows import columns, row_dict, upsert

_TABLE = Provider.__table__
_UPDATABLE = ("name", "category", "base_url", "enabled", "updated_at")


def _provider_row(spec: dict[str, Any], now: Any) -> dict[str, Any]:
    if not spec.get("id"):
        raise ValueError(f"provider without an id: {spec!r}")
    return {
        "id": spec["id"],
        "name": spec.get("name") or spec["id"],
        "category": spec.get("category") or "",
        "base_url": spec.get("base_url") or "",
        "enabled": bool(spec.get("enabled", True)),
        "updated_at": spec.get("updated_at") or now,
    }


async def sync_providers(session: AsyncSession, *, providers: list[dict[str, Any]]) -> None:
    """Insert or update each provider by id (keys: id, name, category, base_url, enabled;
    others are ignored) and commit. Providers missing from the list are left as they are."""
    if not providers:
        return
    now = utcnow()
    rows = [_provider_row(spec, now) for spec in providers]
    await upsert(session, table=_TABLE, rows=rows, key="id", updatable=_UPDATABLE)


async def list_providers(session: AsyncSession) -> list[dict[str, Any]]:
    """Every provider, ordered by id."""
    result = await session.execute(select(*columns(_TABLE)).order_by(_TABLE.c.id))
    return [row_dict(row) for row in result]
