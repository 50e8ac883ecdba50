"""The catalogue while apiwatch runs: providers added, changed or removed without a restart.

`apply` puts one spec into every running part built from the catalogue at start: the
catalogue itself (shared by collection, SLOs and the API), the key pool and budget tiers
(the guard), the `providers` table, the work share, alerting's category of it, the health
job and the collection schedule. The breaker needs nothing: it keeps state per provider id
as probes come. `remove` takes a provider out of all of them. `sync` is how the other processes
of a cluster follow: each change through the API adds a `provider_changes` row, whose
newest id is the catalogue version; every process polls it and, when it grew, reloads the
stored providers and applies the difference.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from apiwatch.catalogue.loader import Catalogue
from apiwatch.catalogue.merge import Source, merge
from apiwatch.catalogue.schema import ProviderSpec
from apiwatch.runtime.wiring import key_pool, provider_tiers
from apiwatch.storage.repositories import provider_specs as spec_repo
from apiwatch.storage.repositories import providers as provider_repo

if TYPE_CHECKING:
    from apiwatch.runtime.core import Runtime

log = structlog.get_logger("apiwatch.providers")


def provider_row(spec: ProviderSpec) -> dict[str, object]:
    """The spec's row in the `providers` table."""
    return {
        "id": spec.id,
        "name": spec.name,
        "category": spec.category.value,
        "base_url": spec.base_url,
        "enabled": spec.enabled,
    }


async def load_stored(sessions: async_sessionmaker[AsyncSession]) -> dict[str, ProviderSpec]:
    """The providers stored through the API, validated again (a row the current schema no
    longer accepts is logged and left out rather than stopping the start)."""
    async with sessions() as session:
        rows = await spec_repo.list_specs(session)
    stored = {}
    for row in rows:
        try:
            stored[row["id"]] = ProviderSpec.model_validate(row["spec"])
        except ValueError as error:
            log.error("stored_provider_invalid", provider=row["id"], error=str(error)[:500])
    return stored


class LiveCatalogue:
    """What the running catalogue is made of: the files' providers, the stored ones, and
    where each running provider came from."""

    def __init__(self, files: Catalogue, *, overrides: bool) -> None:
        self.files = files
        self.overrides = overrides
        self.sources: dict[str, Source] = {}
        self.version = 0  # the newest provider change this process has applied
        # One change at a time in this process: the API's changes and the sync job each
        # read, then write; interleaved, one could apply a stale definition.
        self.lock = asyncio.Lock()

    def compose(self, stored: dict[str, ProviderSpec]) -> Catalogue:
        """The catalogue to start with: files and stored providers by the precedence rules."""
        merged = merge(self.files, stored, overrides=self.overrides)
        for pid in merged.shadowed:
            log.warning(
                "provider_override_ignored",
                provider=pid,
                reason="a file defines it and APIWATCH_PROVIDER_OVERRIDES is off",
            )
        self.sources = dict(merged.sources)
        return Catalogue(providers=merged.providers, sources=dict(self.files.sources))

    def source(self, provider_id: str) -> Source | None:
        return self.sources.get(provider_id)

    async def apply(self, runtime: Runtime, spec: ProviderSpec, source: Source) -> None:
        """Put `spec` into every running part (see the module docstring)."""
        old = runtime.catalogue.providers.get(spec.id)
        runtime.catalogue.providers[spec.id] = spec
        self.sources[spec.id] = source
        guard = runtime.engine.guard
        if guard is not None:
            if old is None or old.auth.keys != spec.auth.keys:
                # The engine and the guard share this dict; a pool kept keeps its keys' rests.
                guard.keys[spec.id] = key_pool(spec, runtime.settings)
            guard.gate.configure(spec.id, **provider_tiers(spec))
        async with runtime.sessions() as session:
            await provider_repo.sync_providers(session, providers=[provider_row(spec)])
        runtime.sharing.set_providers(s.id for s in runtime.catalogue.enabled())
        if runtime.alerts is not None:  # alert routes match on the provider's category
            runtime.alerts.rules.categories[spec.id] = spec.category.value
        runtime.schedule_health_check(spec)
        await runtime.schedules.apply_provider(spec.id)
        if not spec.enabled:
            runtime.retries.drop(spec.id)
            if runtime.alerts is not None:  # after its jobs are gone; again is harmless
                await runtime.alerts.forget_provider(spec.id, reason="disabled")
        log.info(
            "provider_applied",
            provider=spec.id,
            source=source.value,
            enabled=spec.enabled,
            new=old is None,
        )

    async def remove(self, runtime: Runtime, provider_id: str) -> None:
        """Take the provider out of every running part; its stored results stay."""
        old = runtime.catalogue.providers.pop(provider_id, None)
        self.sources.pop(provider_id, None)
        runtime.scheduler.remove(f"health:{provider_id}")
        runtime.schedules.remove_provider(provider_id)
        runtime.retries.drop(provider_id)
        guard = runtime.engine.guard
        if guard is not None:
            guard.keys.pop(provider_id, None)
            guard.gate.forget(provider_id)
        runtime.tracker.forget(provider_id)
        runtime.sharing.set_providers(s.id for s in runtime.catalogue.enabled())
        if runtime.alerts is not None:
            await runtime.alerts.forget_provider(provider_id, reason="removed from the catalogue")
            runtime.alerts.rules.categories.pop(provider_id, None)
        if old is not None:  # its row stays for the stored results, marked disabled
            row = {**provider_row(old), "enabled": False}
            async with runtime.sessions() as session:
                await provider_repo.sync_providers(session, providers=[row])
        log.info("provider_removed", provider=provider_id)

    async def sync(self, runtime: Runtime) -> bool:
        """Follow changes other processes made: True when something was applied."""
        async with self.lock:
            return await self.sync_locked(runtime)

    async def sync_locked(self, runtime: Runtime) -> bool:
        """`sync`, for a caller that holds `lock`."""
        async with runtime.sessions() as session:
            version = await spec_repo.catalogue_version(session)
        if version <= self.version:
            return False
        stored = await load_stored(runtime.sessions)
        merged = merge(self.files, stored, overrides=self.overrides)
        running = runtime.catalogue.providers
        for pid in [pid for pid in running if pid not in merged.providers]:
            await self.remove(runtime, pid)
        for pid, spec in merged.providers.items():
            if running.get(pid) != spec or self.sources.get(pid) != merged.sources[pid]:
                await self.apply(runtime, spec, merged.sources[pid])
        self.version = max(self.version, version)
        return True
