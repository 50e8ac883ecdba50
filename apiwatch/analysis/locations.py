"""A provider's Status from the Statuses of the locations that probe it. Pure.

Each location's status is derived from its own results (`analysis.status.derive_status`).
The provider is `offline` only when at least `quorum` of its locations see it offline (by
default a majority), so one location's network trouble does not take a provider down for
everyone; `degraded`, naming the locations, when some but not enough locations see trouble.
With one location the provider's status is that location's, word for word: a deployment
without locations judges exactly as before.
"""

from __future__ import annotations

from collections.abc import Mapping

from apiwatch.domain import Status


def majority(locations: int) -> int:
    """The smallest number of locations that is more than half of `locations`."""
    return locations // 2 + 1


def needed(locations: int, quorum: int = 0) -> int:
    """How many locations must see a provider offline for it to be offline: `quorum`
    (0 means a majority), never more than there are locations."""
    if locations <= 0:
        return 1
    return min(quorum, locations) if quorum > 0 else majority(locations)


def _label(location: str) -> str:
    return location or "(no location)"


def combine(
    per_location: Mapping[str, tuple[Status, str]], *, quorum: int = 0
) -> tuple[Status, str]:
    """(status, reason) of a provider from {location: (status, reason)}. Every location
    that should probe the provider is a key; one with no results yet is `unknown` and
    counts among the locations but never as failing."""
    if len(per_location) == 1:
        return next(iter(per_location.values()))
    if not per_location:
        return Status.UNKNOWN, "no results yet"
    total = len(per_location)
    names = sorted(per_location)
    offline = [name for name in names if per_location[name][0] is Status.OFFLINE]
    degraded = [name for name in names if per_location[name][0] is Status.DEGRADED]
    if len(offline) >= needed(total, quorum):
        first = offline[0]
        return Status.OFFLINE, (
            f"offline from {', '.join(map(_label, offline))} ({len(offline)} of {total} "
            f"locations); {_label(first)}: {per_location[first][1]}"
        )
    if offline or degraded:
        parts = []
        if offline:
            parts.append(
                f"offline from {', '.join(map(_label, offline))} "
                f"({len(offline)} of {total} locations, {needed(total, quorum)} needed)"
            )
        if degraded:
            parts.append(f"degraded from {', '.join(map(_label, degraded))}")
        first = (offline or degraded)[0]
        return Status.DEGRADED, f"{'; '.join(parts)}; {_label(first)}: {per_location[first][1]}"
    if all(status is Status.UNKNOWN for status, _ in per_location.values()):
        return Status.UNKNOWN, "no results yet"
    return Status.ONLINE, "healthy"
