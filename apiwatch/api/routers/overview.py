"""`GET /api/overview`: everything the dashboard's overview shows, in one call, and
`GET /api/whoami`: which scope the caller's key has (the pages show admin actions by it).

One call instead of one per provider: live state comes from memory (tracker, breakers,
budget gate, collection), history only from the hourly roll-ups plus the live hour
(`storage.repositories.charts.hourly_series`), so the cost does not grow with the number of
stored attempts. The 24 h uptime here is the roll-ups' per-request success rate (retries
included, skipped probes left out), which `GET /api/providers` counts per check instead.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response

from apiwatch.analysis.rollups import LADDER
from apiwatch.analysis.status import health_score
from apiwatch.api.deps import RuntimeDep, SessionDep, json_response
from apiwatch.api.routers.providers import provider_summary
from apiwatch.domain import Status, utcnow
from apiwatch.storage.repositories import charts as chart_repo
from apiwatch.storage.repositories.raw_summary import HOUR, floor_to

router = APIRouter(prefix="/api", tags=["overview"])

SPARK_HOURS = 24
# Worse first: the overview shows a provider's worst item.
# Worst first; a status not listed here counts as the worst (never a 500 for a new one).
FRESHNESS_ORDER = ("stale", "future", "aging", "unknown", "fresh")


def _rank(status: str) -> int:
    return FRESHNESS_ORDER.index(status) if status in FRESHNESS_ORDER else -1


@router.get("/whoami", summary="The caller's key: its name and scope (none when anonymous)")
async def whoami(request: Request, runtime: RuntimeDep) -> dict[str, Any]:
    key = getattr(request.state, "api_key", None)
    return {
        "scope": getattr(key, "scope", None),
        "name": getattr(key, "name", None),
        "public_read": runtime.settings.public_read,
    }


def _spark(hours: dict[datetime, list[float]], first: datetime) -> list[float | None]:
    """Mean latency per hour, oldest first, None for an hour without timed requests."""
    out: list[float | None] = [None] * SPARK_HOURS
    for hour, (count, total) in hours.items():
        index = (hour - first) // HOUR
        if 0 <= index < SPARK_HOURS and count:
            out[index] = round(total / count, 1)
    return out


async def _budgets(runtime: Any) -> tuple[dict[str, dict[str, Any]], dict[str, datetime]]:
    """Each provider's tightest window (highest use) and any Retry-After block."""
    guard = runtime.engine.guard
    if guard is None:
        return {}, {}
    tightest: dict[str, dict[str, Any]] = {}
    for usage in await guard.gate.snapshot():
        best = tightest.get(usage.provider)
        if best is None or usage.percent > best["percent"]:
            tightest[usage.provider] = {
                "window": usage.window,
                "used": usage.used,
                "limit": usage.limit,
                "percent": round(usage.percent, 1),
                "reset_at": usage.reset_at,
                "forecast_exhausted_at": usage.forecast_exhausted_at,
            }
    blocked = {}
    for pid in tightest:
        until = await guard.gate.blocked_until(pid)
        if until is not None:
            blocked[pid] = until
    return tightest, blocked


def worst_freshness(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    worst: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = worst.setdefault(row["provider"], {"status": "fresh", "age_s": None, "items": 0})
        entry["items"] += 1
        if _rank(row["status"]) < _rank(entry["status"]):
            entry["status"] = row["status"]
        if row["age_s"] is not None and (entry["age_s"] is None or row["age_s"] > entry["age_s"]):
            entry["age_s"] = row["age_s"]
    return worst


def failing_book_checks(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Per provider, the book checks failing now (any of its books), for the card's data line."""
    failing: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        failing[row["provider"]].update(row["failed"])
    return {provider: sorted(checks) for provider, checks in failing.items() if checks}


@router.get("/overview", summary="The dashboard overview: every provider's card and the counts")
async def overview(runtime: RuntimeDep, session: SessionDep) -> Response:
    return json_response(await overview_data(runtime, session))


async def overview_data(runtime: Any, session: Any) -> dict[str, Any]:
    now = utcnow()
    first = floor_to(now, HOUR) - (SPARK_HOURS - 1) * HOUR
    series = await chart_repo.hourly_series(
        session, kind="probe", start=first, end=first + SPARK_HOURS * HOUR, now=now, ladder=LADDER
    )
    per_hour: dict[str, dict[datetime, list[float]]] = defaultdict(dict)
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for provider, _detail, hour, figures in series:
        slot = per_hour[provider].setdefault(hour, [0, 0.0])
        slot[0] += sum(sum(hist) for hist in figures.hists)  # requests with a latency
        slot[1] += figures.latency_ms_sum
        totals[provider][0] += figures.count
        totals[provider][1] += figures.errors
    budgets, blocked = await _budgets(runtime)
    guard = runtime.engine.guard
    fresh = worst_freshness(runtime.collection.freshness(now=now))
    books_failing = failing_book_checks(runtime.collection.books_view())
    counts = {status: 0 for status in Status}
    enabled_statuses = []
    cards = []
    for spec in runtime.catalogue.providers.values():
        state = runtime.tracker.state(spec.id)
        if spec.enabled:
            counts[state.status] += 1
            enabled_statuses.append(state.status)
        requests, errors = totals.get(spec.id, (0, 0))
        card = provider_summary(spec, state, None)
        card.update(
            uptime_24h_pct=round(100.0 * (requests - errors) / requests, 2) if requests else None,
            requests_24h=requests,
            latency_24h_ms=_spark(per_hour.get(spec.id, {}), first),
            heartbeat=[
                {"outcome": outcome, "at": at, "latency_ms": latency}
                for outcome, at, latency in runtime.tracker.heartbeat(spec.id)
            ],
            budget=budgets.get(spec.id),
            blocked_until=blocked.get(spec.id),
            breaker=guard.breaker.state(spec.id).state.value if guard else None,
            freshness=fresh.get(spec.id),
            books_failing=books_failing.get(spec.id, []),
        )
        del card["checks_24h"]  # the roll-ups count requests, not checks: requests_24h
        cards.append(card)
    firing = await runtime.alerts.list_alerts(state="firing", limit=1000) if runtime.alerts else []
    return {
        "generated_at": now,
        "counts": counts,
        "health_score": health_score(enabled_statuses),
        "providers_total": len(cards),
        "providers_enabled": len(enabled_statuses),
        "alerts_firing": len(firing),
        "spark_start": first,
        "providers": cards,
    }
