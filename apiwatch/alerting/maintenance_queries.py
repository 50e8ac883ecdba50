"""The alert manager's maintenance windows for the API: list, read, create, replace, change
and delete. Mixed into `AlertManager`; every change is written to the database first and the
policy's windows are then reloaded from it, so what a process holds is what is stored
(the leader picks up other processes' changes in `sync_from_store`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from apiwatch.alerting.maintenance import (
    MaintenanceSet,
    MaintenanceWindow,
    ReadOnlyWindow,
    definition,
    window_from_row,
)
from apiwatch.storage.repositories import maintenance as maintenance_repo

log = structlog.get_logger("apiwatch.alerting")

# Database ids are 32-bit integers; anything else names no stored window.
_MAX_ID = 2**31 - 1


def _stored_id(window_id: str) -> int | None:
    if not window_id.isdigit() or len(window_id) > 10:
        return None
    value = int(window_id)
    return value if 1 <= value <= _MAX_ID else None


class MaintenanceQueries:
    _sessions: async_sessionmaker[AsyncSession]
    _clock: Callable[[], datetime]
    maintenance: MaintenanceSet

    async def reload_maintenance(self) -> int:
        """Read the stored windows again; returns how many changed (added, removed, edited)."""
        async with self._sessions() as session:
            rows = await maintenance_repo.list_windows(session)
        fresh = {w.id: w for w in (window_from_row(row) for row in rows)}
        held = {w.id: w for w in self.maintenance.all() if w.source == "api"}
        changed = sum(1 for wid in fresh.keys() | held.keys() if fresh.get(wid) != held.get(wid))
        self.maintenance.replace_stored(fresh.values())
        return changed

    async def list_maintenance(self) -> list[dict[str, Any]]:
        """Every window, file ones first; active ones say so, with their current occurrence."""
        await self.reload_maintenance()
        now = self._clock()
        return [w.as_dict(now) for w in self.maintenance.all()]

    async def get_maintenance(self, window_id: str) -> dict[str, Any] | None:
        await self.reload_maintenance()
        window = self.maintenance.get(window_id)
        return None if window is None else window.as_dict(self._clock())

    async def create_maintenance(self, fields: Mapping[str, Any], *, by: str) -> dict[str, Any]:
        """Raises MaintenanceError (naming the field) before anything is stored."""
        window = MaintenanceWindow(id="new", source="api", created_by=by, **fields)
        async with self._sessions() as session:
            row = await maintenance_repo.create_window(
                session, row=definition(window) | {"created_by": by}
            )
        await self.reload_maintenance()
        log.info("maintenance_created", window_id=row["id"], matchers=row["matchers"])
        return window_from_row(row).as_dict(self._clock())

    async def change_maintenance(
        self, window_id: str, fields: Mapping[str, Any], *, whole: bool
    ) -> dict[str, Any] | None:
        """Replace the definition (`whole`, PUT) or the given fields (PATCH; null clears an
        optional one). None when there is no such window; ReadOnlyWindow for a file's."""
        current = await self._writable(window_id)
        if current is None:
            return None
        merged = dict(fields) if whole else definition(current) | dict(fields)
        window = MaintenanceWindow(
            id=current.id, source="api", created_by=current.created_by, **merged
        )
        stored_id = _stored_id(window_id)
        assert stored_id is not None
        async with self._sessions() as session:
            row = await maintenance_repo.replace_window(
                session, window_id=stored_id, row=definition(window)
            )
        await self.reload_maintenance()
        if row is None:
            return None
        log.info("maintenance_changed", window_id=row["id"])
        return window_from_row(row).as_dict(self._clock())

    async def delete_maintenance(self, window_id: str) -> bool:
        if await self._writable(window_id) is None:
            return False
        stored_id = _stored_id(window_id)
        assert stored_id is not None
        async with self._sessions() as session:
            deleted = await maintenance_repo.delete_window(session, window_id=stored_id)
        await self.reload_maintenance()
        if deleted:
            log.info("maintenance_deleted", window_id=stored_id)
        return deleted

    async def _writable(self, window_id: str) -> MaintenanceWindow | None:
        await self.reload_maintenance()
        window = self.maintenance.get(window_id)
        if window is not None and window.source == "file":
            raise ReadOnlyWindow(
                f"maintenance window {window_id} is defined in the maintenance file "
                f"({window.origin}): change it there"
            )
        return window
