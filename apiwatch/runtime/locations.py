"""Probing from several locations, across processes: which locations judge a provider, which
process records its combined status, and how other locations' results reach this one.

Every process keeps every location's latest results: its own come through `Runtime.handle`,
the others' through the live feed's Redis relay (`new_log_entry` carries the location). Each
process's `StatusTracker` therefore combines the same per-location statuses and agrees on
the provider's status; but only one process may record and announce a change, or every
location would page: with locations, the leader, which already evaluates the alert rules;
without, the process that probed, as it always was.

The locations that judge a provider are those of the live probing workers (of them, those
its catalogue entry lists, if it lists any); a location whose worker has not yet probed the
provider counts among them, but never as failing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from typing import TYPE_CHECKING

import structlog

from apiwatch.domain import ProbeResult, Status, StatusChange, utcnow
from apiwatch.storage.repositories import status_changes

if TYPE_CHECKING:
    from apiwatch.runtime.core import Runtime

log = structlog.get_logger("apiwatch.runtime")


def stamp(result: ProbeResult, location: str) -> ProbeResult:
    """`result` as probed from `location` (unchanged without one)."""
    if not location or result.location == location:
        return result
    return dataclasses.replace(result, location=location)


def expected(runtime: Runtime, provider: str) -> Collection[str]:
    """The locations whose statuses make up the provider's: those of the live probing
    workers, of them only those the catalogue entry lists if it lists any (a location whose
    workers are gone no longer counts, with the last results it left). Empty: the locations
    the provider has results from."""
    live = runtime.sharing.locations
    spec = runtime.catalogue.get(provider)
    if spec is not None and spec.locations:
        return [name for name in live if name in spec.locations]
    return live


def several(runtime: Runtime, provider: str) -> bool:
    """Whether more than one location judges `provider`."""
    return len(runtime.tracker.locations(provider)) > 1


def located(runtime: Runtime, provider: str) -> bool:
    """Whether `provider` is judged from named locations (not only the unnamed one)."""
    return any(runtime.tracker.locations(provider))


def records_local(runtime: Runtime, provider: str) -> bool:
    """Whether this process records a status change its own result caused: alone or leading,
    yes; a follower only without locations, as before locations existed."""
    sharing = runtime.sharing
    if not sharing.shared or sharing.leading:
        return True
    return not runtime.settings.location and not several(runtime, provider)


def judge_remote(runtime: Runtime, result: ProbeResult) -> StatusChange | None:
    """Judge another process's located final result in this process's tracker; the leader
    records and announces the change it causes."""
    change = runtime.tracker.observe(result)
    if change is None or not runtime.sharing.leading:
        return None
    announce_change(runtime, change)
    return change


def announce_change(runtime: Runtime, change: StatusChange) -> None:
    """Store the change, put it on the bus (alerting, the feed, the relay) and log it."""
    runtime.recorder.record(change)
    runtime.bus.publish(change)
    log.info(
        "status_change",
        provider=change.provider,
        old=change.old.value,
        new=change.new.value,
        reason=change.reason,
    )


async def reconcile(runtime: Runtime) -> list[StatusChange]:
    """On taking the lead: record the combined status of every provider judged from named
    locations where it differs from the last one stored (a change that happened while no
    process led, which nobody recorded)."""
    try:
        async with runtime.sessions() as session:
            stored = await status_changes.latest_status(session)
    except Exception as error:  # the database away: the next change is recorded anyway
        log.warning("locations_reconcile_failed", error=f"{type(error).__name__}: {error}")
        return []
    changes = []
    for spec in runtime.catalogue.enabled():
        state = runtime.tracker.state(spec.id)
        last = stored.get(spec.id)
        if state.status is Status.UNKNOWN or not located(runtime, spec.id):
            continue
        if last is not None and last["status"] == state.status.value:
            continue
        old = Status(last["status"]) if last is not None else Status.UNKNOWN
        change = StatusChange(spec.id, old, state.status, state.reason, utcnow())
        announce_change(runtime, change)
        changes.append(change)
    return changes
