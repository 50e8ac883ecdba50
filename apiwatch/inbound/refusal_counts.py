"""Refused requests (missing or bad key, throttled, limited) counted, not stored one by one.

Each refusal adds one to its group (minute, status, reason, client address prefix: IPv4
/24, IPv6 /48); `drain()` hands back the groups of minutes that are over as `api_refusals`
rows, and `pending()` shows the groups not yet drained (the current minute) without taking
them. A flood of unauthenticated requests from one network thus costs one row per minute
and reason, not one per request. The groups are bounded: past `max_groups`, new groups are
counted under the prefix "other".
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from typing import Any

from apiwatch.inbound.usage import UsageRecord


def prefix(address: str | None) -> str:
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "unknown"
    bits = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network((ip, bits), strict=False))


class RefusalCounter:
    def __init__(self, *, max_groups: int = 10_000) -> None:
        self._groups: dict[tuple[int, int, str, str], int] = {}
        self._max_groups = max_groups
        self.counted = 0

    def add(self, usage: UsageRecord) -> None:
        minute = int(usage.at.timestamp()) // 60 * 60
        reason = usage.refusal or "unknown"
        group = (minute, usage.status, reason, prefix(usage.client))
        if group not in self._groups and len(self._groups) >= self._max_groups:
            group = (minute, usage.status, reason, "other")
        self._groups[group] = self._groups.get(group, 0) + 1
        self.counted += 1

    def drain(self, *, now: datetime, everything: bool = False) -> list[dict[str, Any]]:
        """Rows for the minutes before `now`'s (all minutes with `everything`)."""
        current = int(now.timestamp()) // 60 * 60
        groups = [g for g in self._groups if everything or g[0] < current]
        return [_row(group, self._groups.pop(group)) for group in groups]

    def pending(self) -> list[dict[str, Any]]:
        """The groups not drained yet, as rows, left in place (for reads of recent minutes)."""
        return [_row(group, count) for group, count in self._groups.items()]


def _row(group: tuple[int, int, str, str], count: int) -> dict[str, Any]:
    minute, status, reason, client_prefix = group
    return {
        "minute": datetime.fromtimestamp(minute, UTC),
        "status": status,
        "reason": reason,
        "client_prefix": client_prefix,
        "count": count,
    }
