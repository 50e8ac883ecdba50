"""SLO figures over 1 M and 10 M connection attempts: the roll-up of SLO events, then the
SLO, burn-rate, scorecard, incident and report queries, against a raw scan of the same
events (what computing a 30-day uptime without roll-ups costs).

Run: .venv/bin/python bench/slo_queries.py [--rows 1000000 10000000] [--db sqlite postgres]
                                           [--repeat 15]

Each database is filled by `chart_queries.py`'s generator (N attempts over the last 30 days,
10 providers, ~95 % ok; SQLite through executemany, PostgreSQL with COPY) plus one
10-minute incident per provider and day in `status_changes`; then the `check` and `throttle`
roll-ups of the 30 days (the back-fill) are made, and each query runs `--repeat` times after a
warm-up: repository calls through `SloService` and the HTTP endpoints through the real app
(httpx ASGI transport). The data ends now, so the partial first hour of every window and the
live hours are read from raw rows. Prints p50/p95 and the ratio of the raw scan to the
roll-up read for the same 30-day figures.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import httpx
from chart_queries import DAYS, PROVIDERS, bench_arguments, scratch_database, timed
from sqlalchemy import case, func, insert, select

from apiwatch.analysis.rollups import LADDER
from apiwatch.catalogue.loader import load_catalogue
from apiwatch.domain import FAILURE_OUTCOMES, utcnow
from apiwatch.runtime.slo import SloService
from apiwatch.storage.db import create_engine, create_sessionmaker
from apiwatch.storage.models import TABLES
from apiwatch.storage.repositories import rollups

ATT = TABLES["connection_attempts"].c
BAD = sorted(o.value for o in FAILURE_OUTCOMES)


async def add_incidents(sessions: Any, end: Any) -> int:
    """One 10-minute outage per provider and day: offline, then online again."""
    rows = []
    for day in range(DAYS):
        for index, provider in enumerate(PROVIDERS):
            start = end - timedelta(days=day + 1, minutes=index * 7)
            for old, new, at, reason in (
                ("online", "offline", start, "3 consecutive failures; last: timeout"),
                ("offline", "online", start + timedelta(minutes=10), "healthy"),
            ):
                rows.append(
                    {"provider": provider, "old_status": old, "new_status": new,
                     "reason": reason, "changed_at": at}
                )  # fmt: skip
    async with sessions() as session, session.begin():
        await session.execute(insert(TABLES["status_changes"]), rows)
    return len(rows)


async def raw_scan(sessions: Any, start: Any, end: Any) -> dict[str, tuple[int, int, int]]:
    """The 30-day events per provider straight from `connection_attempts`."""
    good = func.sum(case((ATT.outcome.in_(["ok", "slow"]), 1), else_=0))
    bad = func.sum(case((ATT.outcome.in_(BAD), 1), else_=0))
    throttled = func.sum(case((ATT.outcome == "rate_limited", 1), else_=0))
    async with sessions() as session:
        result = await session.execute(
            select(ATT.provider, good, bad, throttled)
            .where(ATT.started_at >= start, ATT.started_at < end, ATT.final.is_(True))
            .group_by(ATT.provider)
        )
        return {p: (int(g), int(b), int(t)) for p, g, b, t in result}


async def measure(url: str, repeat: int, now: Any) -> list[tuple[str, float, float]]:
    engine = create_engine(url)
    sessions = create_sessionmaker(engine)
    slo = SloService(catalogue=load_catalogue(), sessions=sessions, poor_after=3)
    month = timedelta(days=30)
    results: list[tuple[str, float, float]] = []
    try:
        # The roll-up read and the raw scan must agree before either is timed.
        rolled = {p["provider"]: p["windows"]["30d"] for p in await slo.overview(now=now)}
        scanned = await raw_scan(sessions, now - month, now)
        for provider, (good, bad, throttled) in scanned.items():
            figures = rolled[provider]
            got = (figures["good"], figures["bad"], figures["throttled"])
            assert got == (good, bad, throttled), (provider, got, (good, bad, throttled))
        cases = [
            ("raw scan: 30d events per provider", lambda: raw_scan(sessions, now - month, now)),
            ("repo overview: 5 windows x 10 providers", lambda: slo.overview(now=now)),
            (
                "repo one provider + endpoints",
                lambda: slo.overview(now=now, provider="binance", endpoints=True),
            ),
            ("repo burn rates (5m..3d)", lambda: slo.burn_rates(now=now)),
            (
                "repo scorecard 30d (+2 older windows)",
                lambda: slo.scorecard(
                    windows=slo.rolling_windows(month, now), label="30d", now=now
                ),
            ),
            ("repo incidents 30d", lambda: slo.incidents(start=now - month, end=now, now=now)),
        ]
        for name, call in cases:
            results.append((name, *await timed(repeat, call)))
    finally:
        await engine.dispose()

    from apiwatch.api.app import create_app
    from apiwatch.settings import Settings

    app = create_app(
        Settings(_env_file=None, database_url=url, public_read=True), start_scheduler=False
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for name, path, params in [
                ("HTTP /api/slo", "/api/slo", {}),
                ("HTTP /api/slo/binance", "/api/slo/binance", {}),
                ("HTTP /api/scorecard?window=30d", "/api/scorecard", {"window": "30d"}),
                ("HTTP /api/scorecard csv", "/api/scorecard", {"format": "csv"}),
                ("HTTP /api/incidents", "/api/incidents", {"window": "30d"}),
                (
                    "HTTP /reports/vendors (this month)",
                    "/reports/vendors",
                    {"month": now.strftime("%Y-%m")},
                ),
            ]:

                async def get(path: str = path, params: dict = params) -> Any:
                    response = await client.get(path, params=params)
                    assert response.status_code == 200, response.text
                    return response

                results.append((name, *await timed(repeat, get)))
    return results


async def run_one(db: str, n: int, repeat: int) -> None:
    end = utcnow()
    started = time.perf_counter()
    async with scratch_database(db, n, end) as (url, _planned):
        print(f"{db} {n:,} attempts: filled in {time.perf_counter() - started:.1f} s")
        engine = create_engine(url)
        try:
            sessions = create_sessionmaker(engine)
            changes = await add_incidents(sessions, end)
            async with sessions() as session:
                for kind in ("check", "throttle"):
                    started = time.perf_counter()
                    written = await rollups.roll_up(
                        session, kind=kind, start=end - timedelta(days=DAYS), end=end,
                        ladder=LADDER, now=end,
                    )  # fmt: skip
                    took = time.perf_counter() - started
                    print(f"  {kind} roll-up of {DAYS} days: {took:.1f} s ({written:,} rows)")
        finally:
            await engine.dispose()
        print(f"  {changes:,} status changes ({changes // 2:,} incidents)")
        results = await measure(url, repeat, end)
        raw = results[0][1]
        print(f"  | query ({repeat} runs) | p50 ms | p95 ms | raw scan / this (p50) |")
        print("  |---|---|---|---|")
        for name, p50, p95 in results:
            print(f"  | {name} | {p50:.1f} | {p95:.1f} | {raw / p50:.1f} |")


async def main() -> None:
    args = bench_arguments(__doc__.splitlines()[0], repeat=15)
    for n in args.rows:
        for db in args.db:
            await run_one(db, n, args.repeat)


if __name__ == "__main__":
    asyncio.run(main())
