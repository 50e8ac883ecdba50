"""What the public status page derives: its incidents (from `analysis.incidents`), a day's
level from its uptime, and a cause fit for the public (no URLs, hosts, keys or response
excerpts).

Pure functions over plain rows; the status page reads the rows and renders these.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from apiwatch.analysis.incidents import incidents_from_changes

# A day's level by its uptime (percent of probe requests that succeeded), best first.
# A day without requests has no level ("no data").
DAY_LEVELS: tuple[tuple[float, str], ...] = (
    (99.0, "operational"),
    (95.0, "degraded"),
    (80.0, "partial_outage"),
    (0.0, "major_outage"),
)
NO_DATA = "no_data"

_PARENS = re.compile(r"\([^)]*\)|\[[^\]]*\]|\{[^}]*\}")
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
_HOST = re.compile(r"\b(?:[a-z0-9-]+\.)+[a-z]{2,}(?::\d+)?(?:/\S*)?", re.IGNORECASE)
_IP = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b")
_TOKEN = re.compile(r"\S{25,}")  # anything this long may be a key or a digest
_ALLOWED = re.compile(r"[^A-Za-z0-9 %;:,.'_-]")
MAX_CAUSE = 100


def public_cause(reason: str) -> str:
    """The reason without what may be internal: bracketed details (status lines, body
    excerpts), URLs, host names, addresses and long tokens; at most 100 characters."""
    text = _PARENS.sub(" ", reason or "")
    for pattern in (_URL, _HOST, _IP, _TOKEN):
        text = pattern.sub(" ", text)
    text = _ALLOWED.sub(" ", text)
    text = re.sub(r"\s+", " ", text)
    # A detail cut from before a colon ("rate limited (HTTP 200): …") leaves no gap behind.
    text = re.sub(r" ([;:,.])", r"\1", text).strip(" ;:,.-")
    if len(text) > MAX_CAUSE:
        text = text[: MAX_CAUSE - 1].rstrip() + "…"
    return text


def day_level(requests: int, errors: int) -> tuple[str, float | None]:
    """(level, uptime %) of one day by `DAY_LEVELS`."""
    if requests <= 0:
        return NO_DATA, None
    uptime = 100.0 * (requests - errors) / requests
    for floor, level in DAY_LEVELS:
        if uptime >= floor:
            return level, round(uptime, 3)
    return DAY_LEVELS[-1][1], round(uptime, 3)


def public_incidents(
    changes: Iterable[Mapping[str, Any]], *, now: datetime, since: datetime
) -> list[dict[str, Any]]:
    """The status page's incidents (`analysis.incidents.incidents_from_changes` per provider)
    over [since, now]: newest first, an incident under way at `since` cut to start there, one
    over before it left out, each with its public cause, duration and whether it goes on."""
    by_provider: dict[str, list[Mapping[str, Any]]] = {}
    for change in changes:
        by_provider.setdefault(change["provider"], []).append(change)
    out = []
    for provider, rows in by_provider.items():
        for found in incidents_from_changes(provider, rows):
            if found.end is not None and found.end <= since:
                continue
            start = max(found.start, since)
            end = found.end or now
            out.append(
                {
                    "provider": provider,
                    "start": start,
                    "end": found.end,
                    "worst": found.worst.value,
                    "cause": public_cause(found.reason),
                    "duration_s": round(max(0.0, (end - start).total_seconds()), 1),
                    "ongoing": found.end is None,
                }
            )
    out.sort(key=lambda i: i["start"], reverse=True)
    return out


def day_bars(
    counts: Mapping[tuple[str, datetime], tuple[int, int]],
    provider: str,
    *,
    first: datetime,
    days: int,
) -> list[dict[str, Any]]:
    """One bar per day from `first` on: date, requests, level and uptime (from the
    (provider, day) → (requests, errors) counts the roll-ups give)."""
    bars = []
    for i in range(days):
        day = first + timedelta(days=i)
        requests, errors = counts.get((provider, day), (0, 0))
        level, uptime = day_level(requests, errors)
        bars.append(
            {
                "date": day.date().isoformat(),
                "requests": requests,
                "level": level,
                "uptime_pct": uptime,
            }
        )
    return bars


def level_thresholds() -> list[dict[str, Any]]:
    return [{"level": level, "min_uptime_pct": floor} for floor, level in DAY_LEVELS]
