"""Access to apiwatch's own API: keys kept in the database and mirrored into the in-memory
store the inbound middleware reads, and the usage stream the middleware produces.

The middleware (`apiwatch.inbound`) never touches the database itself: it looks keys up in
memory, and the store asks `lookup_hash` here on a miss or a stale hit, so a key created or
revoked by another process (`apiwatch keys create`, `apiwatch keys revoke`) counts at once
or within `recheck_s`. It hands each request's `UsageRecord` to `record_usage`, which only
queues rows for the batched recorder and bumps in-memory counters. `flush_usage` moves the
counters to `api_keys.usage_count`/`last_used` in the background; `reload` picks up every
key changed by another process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from apiwatch.inbound import ApiKeyRecord, MemoryKeyStore, UsageRecord
from apiwatch.inbound.keys import generate_key, hash_key, key_prefix
from apiwatch.inbound.refusal_counts import RefusalCounter
from apiwatch.storage.repositories import api_keys as key_repo

log = structlog.get_logger("apiwatch.access")

Scope = Literal["read", "admin"]


def _record(row: dict[str, Any]) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row["id"],
        name=row["name"],
        scope=row["scope"],
        active=row["active"],
        prefix=row["prefix"],
        minute_limit=row["minute_limit"],
        hour_limit=row["hour_limit"],
        day_limit=row["day_limit"],
    )


def masked(row: dict[str, Any]) -> dict[str, Any]:
    """A key as listings show it: its prefix and an ellipsis, never more."""
    return {**row, "key": f"{row['prefix']}…"}


class AccessControl:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        store: MemoryKeyStore,
        record: Callable[[object], None],
        listeners: list[Callable[[UsageRecord], None]] | None = None,
        recheck_s: float = 1.0,
    ) -> None:
        self._sessions = sessions
        self.store = store
        store.resolver = self.lookup_hash
        store.recheck_s = recheck_s
        self._record = record
        self._usage: dict[int, tuple[int, datetime]] = {}
        # Reloads one at a time: a reload that read its rows before a change was committed
        # must not replace the store after the change's own reload.
        self._reload_lock = asyncio.Lock()
        # Alerting's inbound rules (usage spikes, unauthorized attempts) listen here.
        self.listeners = listeners if listeners is not None else []
        # Refused requests are counted per minute and network, not stored one row each.
        self.refusals = RefusalCounter()

    async def reload(self) -> int:
        """Replace the in-memory store with the database's keys; returns how many."""
        async with self._reload_lock:
            async with self._sessions() as session:
                rows = await key_repo.all_with_hashes(session)
            self.store.replace_all({row["key_hash"]: _record(row) for row in rows})
        return len(rows)

    async def lookup_hash(self, key_hash: str) -> ApiKeyRecord | None:
        """The database's record of one key (by hash), for the in-memory store."""
        async with self._sessions() as session:
            row = await key_repo.get_by_hash(session, key_hash=key_hash)
        return None if row is None else _record(row)

    async def create(
        self,
        *,
        name: str,
        scope: Scope,
        minute_limit: int | None = None,
        hour_limit: int | None = None,
        day_limit: int | None = None,
        key: str | None = None,
    ) -> tuple[dict[str, Any], str]:
        """Store a new key (or the given one) and return (its row, the key itself).

        The key is returned once, here; only its hash is kept."""
        key = key or generate_key()
        async with self._sessions() as session:
            row = await key_repo.create_key(
                session,
                name=name,
                scope=scope,
                key_hash=hash_key(key),
                prefix=key_prefix(key),
                minute_limit=minute_limit,
                hour_limit=hour_limit,
                day_limit=day_limit,
            )
        self.store.add(hash_key(key), _record(row))
        log.info("api_key_created", key_id=row["id"], name=name, scope=scope)
        return masked(row), key

    async def ensure_bootstrap_key(self, *, configured: str | None) -> str | None:
        """Make sure an admin can get in.

        With a configured admin key (APIWATCH_ADMIN_KEY) that key is registered if it is
        not yet. With no key at all, one admin key is created and returned so the face can
        print it once. Otherwise nothing happens and None is returned."""
        async with self._sessions() as session:
            total = await key_repo.count_keys(session)
        if configured:
            if self.store.get(hash_key(configured)) is None:
                try:
                    await self.create(
                        name="admin (APIWATCH_ADMIN_KEY)", scope="admin", key=configured
                    )
                except IntegrityError:
                    # Another process starting at the same moment registered it first.
                    await self.reload()
            return None
        if total:
            return None
        _, key = await self.create(name="admin (first start)", scope="admin")
        return key

    async def list(self) -> list[dict[str, Any]]:
        async with self._sessions() as session:
            return [masked(row) for row in await key_repo.list_keys(session)]

    async def get(self, key_id: int) -> dict[str, Any] | None:
        async with self._sessions() as session:
            row = await key_repo.get_key(session, key_id=key_id)
        return None if row is None else masked(row)

    async def update(self, key_id: int, changes: dict[str, Any]) -> dict[str, Any] | None:
        async with self._sessions() as session:
            row = await key_repo.update_key(session, key_id=key_id, changes=changes)
        if row is not None:
            await self.reload()
            log.info("api_key_updated", key_id=key_id, fields=sorted(changes))
        return None if row is None else masked(row)

    async def delete(self, key_id: int) -> bool:
        async with self._sessions() as session:
            deleted = await key_repo.delete_key(session, key_id=key_id)
        if deleted:
            await self.reload()
            log.info("api_key_deleted", key_id=key_id)
        return deleted

    def record_usage(self, usage: UsageRecord) -> None:
        """Called by the middleware after each response: queue, count, notify. Never blocks."""
        if not usage.authorized:
            self.refusals.add(usage)
        else:
            self._record_row(usage)
        if usage.key_id is not None and usage.authorized:
            count, _ = self._usage.get(usage.key_id, (0, usage.at))
            self._usage[usage.key_id] = (count + 1, usage.at)
        for listener in self.listeners:
            try:
                listener(usage)
            except Exception:  # a listener's bug must not cost the request its record
                log.exception("usage_listener_failed")

    def _record_row(self, usage: UsageRecord) -> None:
        self._record(
            (
                "api_usage",
                {
                    "key_id": usage.key_id,
                    "key_name": usage.key_name,
                    "route": usage.route[:256],
                    "method": usage.method[:8],
                    "status": usage.status,
                    "latency_ms": usage.latency_ms,
                    "client": None if usage.client is None else usage.client[:64],
                    "authorized": usage.authorized,
                    "at": usage.at,
                },
            )
        )

    def flush_refusals(self, *, everything: bool = False) -> int:
        """Queue the refusal counts of the minutes that are over; returns rows queued."""
        rows = self.refusals.drain(now=datetime.now(UTC), everything=everything)
        for row in rows:
            self._record(("api_refusals", row))
        return len(rows)

    async def flush_usage(self) -> int:
        """Move the counted requests into `api_keys`; returns how many keys were updated."""
        usage, self._usage = self._usage, {}
        if not usage:
            return 0
        try:
            async with self._sessions() as session:
                await key_repo.add_usage(session, usage=usage)
        except Exception:
            # Put the counts back so the next flush carries them.
            for key_id, (count, at) in usage.items():
                old_count, old_at = self._usage.get(key_id, (0, at))
                self._usage[key_id] = (old_count + count, max(old_at, at))
            raise
        return len(usage)
