"""Providers changed through the API: the precedence rules, the stored definition and its
history, then the running parts (`Runtime.apply_provider`). One change at a time per
process (the live catalogue's lock), so two requests cannot interleave their read and
write; each first catches up with changes other processes made.

The rules (docs/providers.md): a provider some catalogue file defines is read-only unless
overrides are allowed; with them, a PUT or PATCH stores an override, which wins, and a
DELETE of the override brings the file's definition back. A provider only the API defines
may be replaced, patched and deleted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from apiwatch.budget.gate import BudgetGate
from apiwatch.catalogue.export import spec_document
from apiwatch.catalogue.merge import Source, file_source
from apiwatch.catalogue.schema import ProviderSpec
from apiwatch.collectors.registry import COLLECTORS
from apiwatch.domain import utcnow
from apiwatch.runtime.live_catalogue import LiveCatalogue
from apiwatch.runtime.wiring import provider_tiers
from apiwatch.storage.repositories import provider_specs as spec_repo

if TYPE_CHECKING:
    from apiwatch.runtime.core import Runtime


class ProviderConflict(Exception):
    """The change contradicts where the provider comes from (409)."""


class ProviderMissing(Exception):
    """No such provider (404)."""


class ProviderRefused(Exception):
    """The spec is valid field by field but cannot run (400): e.g. a window the budget
    gate does not know."""


@dataclass(frozen=True)
class Author:
    """Who changes a provider: the API key's id and name (never the key itself)."""

    key_id: int | None
    name: str


def diff(before: Any, after: Any, path: str = "") -> list[dict[str, Any]]:
    """The changed leaves between two spec documents, `{path, before, after}` each, with
    dotted paths (`health.expect.0.status`); a value added or removed has `null` on the
    side it is missing from."""
    if isinstance(before, dict) and isinstance(after, dict):
        out = []
        for key in [*before, *(k for k in after if k not in before)]:
            out += diff(before.get(key), after.get(key), f"{path}.{key}" if path else str(key))
        return out
    if before == after:
        return []
    return [{"path": path or "(provider)", "before": before, "after": after}]


def _live(runtime: Runtime) -> LiveCatalogue:
    assert runtime.live is not None, "open_runtime sets the live catalogue"
    return runtime.live


def _read_only(runtime: Runtime, provider_id: str, source: Source) -> ProviderConflict:
    path = _live(runtime).files.sources.get(provider_id)
    return ProviderConflict(
        f"provider {provider_id!r} is defined in a catalogue file ({source.value}: "
        f"{path.name if path else '?'}) and is read-only through the API; change the file, "
        "or start apiwatch with APIWATCH_PROVIDER_OVERRIDES=true to let the API override it"
    )


def _runnable(spec: ProviderSpec) -> None:
    """What the schema cannot say but the running parts need: collectors that exist, budget
    windows the gate knows."""
    for name, endpoint in spec.endpoints.items():
        if endpoint.collector is not None and endpoint.collector not in COLLECTORS:
            known = ", ".join(sorted(COLLECTORS))
            raise ProviderRefused(
                f"endpoints.{name}.collector: unknown collector {endpoint.collector!r}; "
                f"known: {known}"
            )
    try:
        tiers = provider_tiers(spec)
        BudgetGate({spec.id: tiers["limits"]}).configure(spec.id, **tiers)
    except ValueError as error:
        raise ProviderRefused(f"rate_limits: {error}") from error


async def _store(
    runtime: Runtime,
    *,
    provider_id: str,
    action: str,
    spec: ProviderSpec | None,
    source: Source,
    before: ProviderSpec | None,
    author: Author,
) -> None:
    """Store the change with its history row, then apply it here; other processes follow
    by the catalogue version."""
    old = spec_document(before) if before is not None else None
    new = spec_document(spec) if spec is not None else None
    async with runtime.sessions() as session:
        version = await _save(
            session,
            provider=provider_id,
            action=action,
            spec=new,
            source=source.value,
            before=old,
            diff=diff(old or {}, new or {}),
            key_id=author.key_id,
            key_name=author.name,
            at=utcnow(),
        )
    if spec is not None:
        await runtime.apply_provider(spec, source)
    else:
        await runtime.remove_provider(provider_id)
    _seen(_live(runtime), version)


async def _save(session: AsyncSession, **change: Any) -> int:
    try:
        return await spec_repo.save_change(session, **change)
    except IntegrityError as error:
        # Another process created the same provider between our check and our write.
        await session.rollback()
        raise ProviderConflict(
            f"provider {change['provider']!r} was changed by another process at the same "
            "time; read it again and retry"
        ) from error


def _seen(live: LiveCatalogue, version: int) -> None:
    # Our own change is applied: the sync need not reload it. Only when it directly follows
    # the version seen: a change another process made in between is still to be loaded.
    if version == live.version + 1:
        live.version = version


async def create(runtime: Runtime, spec: ProviderSpec, author: Author) -> None:
    live = _live(runtime)
    async with live.lock:
        await live.sync_locked(runtime)
        source = live.source(spec.id)
        if source in (Source.BUILTIN, Source.FILE):
            raise ProviderConflict(
                f"provider {spec.id!r} is defined in a catalogue file ({source.value}); "
                + (
                    f"PUT /api/providers/{spec.id} overrides it"
                    if live.overrides
                    else "it is read-only through the API unless APIWATCH_PROVIDER_OVERRIDES=true"
                )
            )
        if source is not None:
            raise ProviderConflict(
                f"provider {spec.id!r} exists; PUT or PATCH /api/providers/{spec.id} changes it"
            )
        _runnable(spec)
        await _store(
            runtime,
            provider_id=spec.id,
            action="create",
            spec=spec,
            source=Source.API,
            before=None,
            author=author,
        )


async def change(
    runtime: Runtime,
    provider_id: str,
    make: Callable[[ProviderSpec], ProviderSpec],
    action: str,
    author: Author,
) -> ProviderSpec:
    """Replace (PUT) or patch (PATCH) a provider: `make(current spec)` gives the new spec
    (it may raise). A file provider's change is an override, only when they are allowed."""
    live = _live(runtime)
    async with live.lock:
        await live.sync_locked(runtime)
        current = runtime.catalogue.get(provider_id)
        source = live.source(provider_id)
        if current is None or source is None:
            raise ProviderMissing(provider_id)
        if source in (Source.BUILTIN, Source.FILE, Source.API_OVERRIDE) and not live.overrides:
            raise _read_only(runtime, provider_id, file_source(live.files, provider_id) or source)
        spec = make(current)
        _runnable(spec)
        new_source = Source.API if source is Source.API else Source.API_OVERRIDE
        await _store(
            runtime,
            provider_id=provider_id,
            action=action,
            spec=spec,
            source=new_source,
            before=current,
            author=author,
        )
        return spec


async def delete(runtime: Runtime, provider_id: str, author: Author) -> Source | None:
    """Delete an API provider, or an override (the file's definition comes back: its
    source is returned); file providers cannot be deleted through the API."""
    live = _live(runtime)
    async with live.lock:
        await live.sync_locked(runtime)
        current = runtime.catalogue.get(provider_id)
        source = live.source(provider_id)
        if current is None or source is None:
            raise ProviderMissing(provider_id)
        if source in (Source.BUILTIN, Source.FILE):
            raise ProviderConflict(
                f"provider {provider_id!r} is defined in a catalogue file ({source.value}) "
                "and cannot be deleted through the API; remove it from the file, or disable "
                + (
                    f"it with PATCH /api/providers/{provider_id} {{'enabled': false}}"
                    if live.overrides
                    else "it there (enabled: false)"
                )
            )
        if source is Source.API_OVERRIDE and not live.overrides:
            raise _read_only(runtime, provider_id, file_source(live.files, provider_id) or source)
        async with runtime.sessions() as session:
            version = await _save(
                session,
                provider=provider_id,
                action="delete",
                spec=None,
                source=source.value,
                before=spec_document(current),
                diff=diff(spec_document(current), {}),
                key_id=author.key_id,
                key_name=author.name,
                at=utcnow(),
            )
        restored = live.files.get(provider_id)
        kind = None
        if restored is not None:  # the override goes; the file's definition runs again
            kind = file_source(live.files, provider_id) or Source.FILE
            await runtime.apply_provider(restored, kind)
        else:
            await runtime.remove_provider(provider_id)
        _seen(live, version)
        return kind
