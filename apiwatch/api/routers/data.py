"""Collected data: `GET /api/data/latest` (latest values, consensus, divergence),
`GET /api/data/books` (the latest order book per exchange and the integrity checks'
verdicts), `GET /api/freshness` and `GET /api/categories` (per category: providers, online, latency,
freshness, compliance)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from statistics import fmean
from typing import Any

from fastapi import APIRouter, Query

from apiwatch.api.deps import RuntimeDep, SessionDep
from apiwatch.domain import Category, Status, utcnow
from apiwatch.storage.repositories import schedules as schedule_repo

router = APIRouter(prefix="/api", tags=["data"])


@router.get("/data/latest", summary="Latest value per provider and item, with the consensus")
async def latest(
    runtime: RuntimeDep,
    category: Category | None = None,
    item: str | None = Query(default=None, max_length=1024),
) -> dict[str, Any]:
    collection = runtime.collection
    points = [
        {
            "provider": point.provider,
            "category": point.category,
            "item": point.item,
            # Exact decimals travel as strings: a JSON number would go through a float.
            "value": None if point.value is None else format(point.value, "f"),
            "text": point.text,
            "values": point.values,
            "data_time": point.data_timestamp,
            "fetched_at": point.fetched_at,
        }
        for (_, name), point in sorted(collection.latest.items())
        if (category is None or point.category == category.value) and (item is None or name == item)
    ]
    view = collection.consensus_view()
    consensus = {
        name: {
            "median": format(entry["median"], "f"),
            "threshold_pct": entry["threshold_pct"],
            "divergent": entry["divergent"],
            "providers": {
                pid: {
                    "value": format(p["value"], "f"),
                    "deviation_pct": round(p["deviation_pct"], 4),
                    "divergent": p["divergent"],
                }
                for pid, p in entry["providers"].items()
            },
        }
        for name, entry in view.items()
        if item is None or name == item
    }
    return {"points": points, "consensus": consensus}


@router.get("/data/books", summary="Latest order book per exchange, with its checks' verdicts")
async def books(
    runtime: RuntimeDep,
    provider: str | None = Query(default=None, max_length=64),
    item: str | None = Query(default=None, max_length=64),
) -> dict[str, Any]:
    """Best bid and ask, mid, spread (bps), depth within ±1 % of the mid (quote notional),
    the book's age and update id, and per check `ok`, `failed` or `not_judged` (with what
    failed in `failed`). Exact decimals travel as strings."""
    rows = [
        row
        for row in runtime.collection.books_view()
        if (provider is None or row["provider"] == provider)
        and (item is None or row["item"] == item)
    ]
    failing = sorted({row["provider"] for row in rows if row["failed"]})
    return {"books": rows, "failing": failing}


@router.get("/freshness", summary="Per provider and item: data time, age, TTL and status")
async def freshness(runtime: RuntimeDep, category: Category | None = None) -> dict[str, Any]:
    rows = runtime.collection.freshness()
    if category is not None:
        rows = [row for row in rows if row["category"] == category.value]
    return {"items": rows, "counts": dict(Counter(row["status"] for row in rows))}


@router.get("/categories", summary="Per category: providers, online, latency, freshness")
async def categories(runtime: RuntimeDep, session: SessionDep) -> dict[str, Any]:
    since = utcnow() - timedelta(hours=24)
    compliance = await schedule_repo.compliance_summary(session, since=since)
    fresh_rows = runtime.collection.freshness()
    out = []
    for category in Category:
        specs = [s for s in runtime.catalogue.providers.values() if s.category is category]
        if not specs:
            continue
        states = {s.id: runtime.tracker.state(s.id) for s in specs}
        latencies = [
            state.last_result.latency_ms
            for state in states.values()
            if state.last_result is not None and state.last_result.latency_ms is not None
        ]
        planned = on_time = 0
        for (_, cat), entry in compliance.items():
            if cat == category.value:
                planned += entry["planned"] - entry["skip_reasons"].get("disabled", 0)
                on_time += entry["on_time"]
        out.append(
            {
                "category": category.value,
                "providers": sorted(states),
                "enabled": sorted(s.id for s in specs if s.enabled),
                "online": sum(state.status is Status.ONLINE for state in states.values()),
                "statuses": {pid: state.status.value for pid, state in states.items()},
                "avg_latency_ms": round(fmean(latencies), 1) if latencies else None,
                "freshness": dict(
                    Counter(r["status"] for r in fresh_rows if r["category"] == category.value)
                ),
                "compliance_24h_pct": round(100.0 * on_time / planned, 2) if planned else None,
            }
        )
    return {"categories": out}
