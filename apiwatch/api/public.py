"""What the public faces (the status page and the badges) share: which providers are public,
a short-lived cache so anonymous traffic costs one computation per minute, and the status
page's data built from the roll-ups, the status changes and the live state.

Nothing internal goes out: provider ids, names, categories, statuses, day levels and public
causes (`analysis.status_page.public_cause`); never keys, URLs, raw reasons or admin data.
A maintenance window's notice carries its title, message, times and the names of the public
providers it covers; never its matchers, id, source or author.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

import structlog

from apiwatch.alerting.maintenance import UPCOMING, MaintenanceWindow
from apiwatch.analysis.rollups import LADDER
from apiwatch.analysis.status_page import day_bars, level_thresholds, public_cause, public_incidents
from apiwatch.catalogue.schema import ProviderSpec
from apiwatch.domain import utcnow
from apiwatch.runtime import Runtime
from apiwatch.storage.repositories import charts as chart_repo
from apiwatch.storage.repositories import status_changes
from apiwatch.storage.repositories.raw_summary import floor_to

log = structlog.get_logger("apiwatch.public")

DAYS = 90
DAY = timedelta(days=1)
CACHE_S = 60.0


def public_providers(runtime: Runtime) -> list[ProviderSpec]:
    """The providers `APIWATCH_STATUS_PAGE_PROVIDERS` names (every enabled one when empty),
    in catalogue order; names not in the catalogue are skipped with a warning."""
    chosen = runtime.settings.status_page_providers
    if not chosen:
        return runtime.catalogue.enabled()
    unknown = [pid for pid in chosen if runtime.catalogue.get(pid) is None]
    if unknown:
        log.warning("status_page_unknown_providers", providers=unknown)
    wanted = set(chosen)
    return [spec for spec in runtime.catalogue.providers.values() if spec.id in wanted]


class TTLCache:
    """Values computed at most once per `ttl_s` per key (per process)."""

    def __init__(self, ttl_s: float = CACHE_S, clock: Callable[[], float] = time.monotonic):
        self._ttl = ttl_s
        self._clock = clock
        self._values: dict[Any, tuple[float, Any]] = {}

    async def get(self, key: Any, compute: Callable[[], Awaitable[Any]]) -> Any:
        now = self._clock()
        hit = self._values.get(key)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        value = await compute()
        if len(self._values) > 10_000:  # badges for many providers and spans: stay bounded
            self._values.clear()
        self._values[key] = (now, value)
        return value


async def status_page_data(runtime: Runtime) -> dict[str, Any]:
    """The public status page as data (`/status.json`; the HTML page renders the same)."""
    now = utcnow()
    specs = public_providers(runtime)
    ids = [spec.id for spec in specs]
    first_day = floor_to(now, DAY) - (DAYS - 1) * DAY
    async with runtime.sessions() as session:
        daily = await chart_repo.daily_counts(
            session, start=first_day, end=now, now=now, ladder=LADDER, providers=ids
        )
        changes = await status_changes.changes_since(session, providers=ids, since=first_day)
    silences = await runtime.alerts.list_silences() if runtime.alerts else []
    providers = []
    for spec in specs:
        state = runtime.tracker.state(spec.id)
        days = day_bars(daily, spec.id, first=first_day, days=DAYS)
        judged = [d["uptime_pct"] for d in days if d["uptime_pct"] is not None]
        providers.append(
            {
                "id": spec.id,
                "name": spec.name,
                "category": spec.category.value,
                "status": state.status.value,
                "cause": "" if state.status.value == "online" else public_cause(state.reason),
                "since": state.changed_at,
                "uptime_90d_pct": round(sum(judged) / len(judged), 3) if judged else None,
                "days": days,
            }
        )
    by_id = {spec.id: spec for spec in specs}
    notices = []
    for silence in silences:
        if not silence.get("active"):
            continue
        matchers = silence.get("matchers") or {}
        pid, category = matchers.get("provider"), matchers.get("category")
        if pid is None and category is None:
            continue  # a rule or severity muted everywhere says nothing about a provider
        if pid is not None and pid not in by_id:
            continue  # about a provider the page does not show
        if category is not None and all(s.category.value != category for s in specs):
            continue
        notices.append(
            {
                "kind": "maintenance",
                "provider": pid,
                "provider_name": by_id[pid].name if pid else None,
                "category": category,
                "starts_at": silence["starts_at"],
                "ends_at": silence["ends_at"],
                "state": "active",
            }
        )
    if runtime.alerts is not None:
        await runtime.alerts.reload_maintenance()
        notices += window_notices(runtime.alerts.maintenance.all(), specs, now=now)
    found = public_incidents(changes, now=now, since=first_day)
    for incident in found:
        incident["provider_name"] = by_id[incident["provider"]].name
    return {
        "title": runtime.settings.status_page_title,
        "generated_at": now,
        "days": DAYS,
        "levels": level_thresholds(),
        "providers": providers,
        "incidents": found[:200],
        "notices": notices,
    }


def window_notices(
    windows: Sequence[MaintenanceWindow], specs: Sequence[ProviderSpec], *, now: datetime
) -> list[dict[str, Any]]:
    """Notices of maintenance windows in force now or starting within 7 days, for the public
    providers they cover. Only windows whose matchers name nothing but `provider` and/or
    `category` say something about a provider (as for the SLO figures); one that covers no
    public provider is left out."""
    out = []
    for window in windows:
        matchers = dict(window.matchers)
        if set(matchers) - {"provider", "category"}:
            continue
        covered = [
            spec
            for spec in specs
            if fnmatchcase(spec.id, matchers.get("provider", "*"))
            and fnmatchcase(spec.category.value, matchers.get("category", "*"))
        ]
        if not covered:
            continue
        current = window.occurrence_at(now)
        upcoming = None if current is not None else window.next_occurrence(now)
        if upcoming is not None and upcoming.starts_at - now > UPCOMING:
            upcoming = None
        occurrence = current or upcoming
        if occurrence is None:
            continue
        single = covered[0] if len(covered) == 1 else None
        out.append(
            {
                "kind": "maintenance",
                "state": "active" if current is not None else "upcoming",
                "title": window.title,
                "message": window.message,
                "provider": single.id if single else None,
                "provider_name": single.name if single else None,
                "category": None,
                "providers": [{"id": spec.id, "name": spec.name} for spec in covered],
                "starts_at": occurrence.starts_at,
                "ends_at": occurrence.ends_at,
            }
        )
    return sorted(out, key=lambda n: (n["state"] != "active", n["starts_at"]))
