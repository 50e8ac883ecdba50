"""Chart queries over 1 M and 10 M connection attempts: fill, roll-up, then query times.

Run: .venv/bin/python bench/chart_queries.py [--rows 1000000 10000000] [--db sqlite postgres]
                                             [--repeat 30]

For each database and row count: a fresh database (a SQLite file in /tmp, or the PostgreSQL
database `bench_charts` at APIWATCH_BENCH_POSTGRES_URL, default
postgresql+asyncpg://postgres@127.0.0.1:5432/test, created and dropped here), migrated;
`connection_attempts` filled with N rows over the last 30 days, 10 providers (about 95 %
ok, lognormal latencies, some timeouts, errors and skipped probes) and `schedule_compliance`
with 30 days of planned runs (~210 k rows) — SQLite through the sync sqlite3 module with
executemany in one transaction, PostgreSQL with COPY; then one roll-up of all 30 days (the
back-fill; the periodic job only redoes two hours); then each chart query `--repeat` times:
the repository functions, and the HTTP endpoints through the real app over httpx's ASGI
transport. The data ends now, so the current and previous hour are read live from raw rows,
as in the first minutes of every hour. Prints p50/p95 per query.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url

from apiwatch.analysis.rollups import LADDER
from apiwatch.domain import utcnow
from apiwatch.storage.db import create_engine, create_sessionmaker
from apiwatch.storage.migrate import upgrade
from apiwatch.storage.repositories import charts, rollups

PG_URL = os.environ.get(
    "APIWATCH_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
PG_DATABASE = "bench_charts"
DAYS = 30
PROVIDERS = [
    "binance", "coingecko", "coinmarketcap", "cryptocompare", "etherscan",
    "bscscan", "tronscan", "cryptopanic", "newsapi", "alternative_me",
]  # fmt: skip
# (outcome, status, weight out of 1000)
OUTCOMES = [
    ("ok", 200, 950),
    ("slow", 200, 20),
    ("timeout", None, 8),
    ("server_error", 503, 8),
    ("rate_limited", 429, 6),
    ("connection_error", None, 3),
    ("skipped", None, 5),
]
# (category, interval minutes, providers): the default schedules (docs/concepts.md).
SCHEDULES = [("market_data", 1, 4), ("blockchain_explorers", 5, 3), ("news", 10, 2)]
SCHEDULES += [("sentiment", 15, 1)]
COLUMNS = (
    "provider", "endpoint", "outcome", "status_code", "latency_ms", "reason", "attempt",
    "final", "key_label", "response_bytes", "started_at",
)  # fmt: skip
BATCH = 100_000


def attempt_rows(n: int, end: datetime, *, as_text: bool) -> Iterator[tuple[Any, ...]]:
    """N attempts evenly over the DAYS before `end`, in time order as a monitor writes them.
    Random pools are cycled (lengths coprime to the provider count) to keep generation cheap."""
    rng = random.Random(42)
    outcomes = [(o, s) for o, s, w in OUTCOMES for _ in range(w)]
    rng.shuffle(outcomes)
    latencies = [round(rng.lognormvariate(5.0, 0.8), 3) for _ in range(100_003)]
    span_us = DAYS * 86_400_000_000
    start = end - timedelta(microseconds=span_us)
    step = span_us / n
    for i in range(n):
        outcome, status = outcomes[i % 997]
        latency = None if outcome == "skipped" else latencies[i % 100_003]
        if outcome == "timeout":
            latency = 10_000.0
        at = start + timedelta(microseconds=int(i * step))
        yield (
            PROVIDERS[i % len(PROVIDERS)],
            "health",
            outcome,
            status,
            latency,
            "",
            1,
            True,
            None,
            None,
            at.strftime("%Y-%m-%d %H:%M:%S.%f") if as_text else at,
        )


def compliance_rows(end: datetime, *, as_text: bool) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(7)
    first = end - timedelta(days=DAYS)
    for category, every, providers in SCHEDULES:
        for p in range(providers):
            planned = first
            while planned < end:
                roll = rng.random()
                result = "on_time" if roll < 0.93 else "late" if roll < 0.98 else "skipped"
                at = planned.strftime("%Y-%m-%d %H:%M:%S.%f") if as_text else planned
                skipped = result == "skipped"
                reason = "rate_limit_budget" if skipped else ""
                started = None if skipped else at
                yield (f"{category}-{p}", category, at, started, None, result, reason)
                planned += timedelta(minutes=every)


COMPLIANCE_COLUMNS = (
    "provider", "category", "planned_at", "started_at", "lateness_ms", "result", "reason",
)  # fmt: skip


def fill_sqlite(path: Path, n: int, end: datetime) -> int:
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        marks = ", ".join("?" * len(COLUMNS))
        insert = f"INSERT INTO connection_attempts ({', '.join(COLUMNS)}) VALUES ({marks})"
        with connection:
            rows = attempt_rows(n, end, as_text=True)
            while batch := list(itertools.islice(rows, BATCH)):
                connection.executemany(insert, batch)
            marks = ", ".join("?" * len(COMPLIANCE_COLUMNS))
            cols = ", ".join(COMPLIANCE_COLUMNS)
            connection.executemany(
                f"INSERT INTO schedule_compliance ({cols}) VALUES ({marks})",
                compliance_rows(end, as_text=True),
            )
        connection.execute("ANALYZE")
        return connection.execute("SELECT count(*) FROM schedule_compliance").fetchone()[0]
    finally:
        connection.close()


async def fill_postgres(url: str, n: int, end: datetime) -> int:
    import asyncpg

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        rows = attempt_rows(n, end, as_text=False)
        while batch := list(itertools.islice(rows, BATCH)):
            await connection.copy_records_to_table(
                "connection_attempts", records=batch, columns=COLUMNS
            )
        planned = list(compliance_rows(end, as_text=False))
        await connection.copy_records_to_table(
            "schedule_compliance", records=planned, columns=COMPLIANCE_COLUMNS
        )
        await connection.execute("ANALYZE")
        return len(planned)
    finally:
        await connection.close()


async def pg_admin(sql: str) -> None:
    engine = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.exec_driver_sql(sql)
    finally:
        await engine.dispose()


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return statistics.median(ordered), p95


async def timed(repeat: int, call: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    await call()  # warm-up: first touch of pages and statement caches
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - start) * 1000)
    return percentiles(samples)


def build_app(url: str) -> Any:
    """The real app with the charts router mounted (once app.py mounts it, as is)."""
    from apiwatch.api.app import create_app
    from apiwatch.api.routers import charts as charts_router
    from apiwatch.settings import Settings

    app = create_app(
        Settings(_env_file=None, database_url=url, public_read=True), start_scheduler=False
    )
    if not any(getattr(r, "path", "").startswith("/api/charts") for r in app.routes):
        app.include_router(charts_router.router)
    return app


async def measure(url: str, repeat: int, now: datetime) -> list[tuple[str, float, float]]:
    engine = create_engine(url)
    sessions = create_sessionmaker(engine)
    results: list[tuple[str, float, float]] = []

    def history(span: timedelta, bucket: timedelta) -> Callable[[], Awaitable[Any]]:
        async def call() -> Any:
            async with sessions() as session:
                points = await charts.health_history(
                    session, start=now - span, end=now, bucket=bucket, providers=None, now=now,
                    ladder=LADDER,
                )  # fmt: skip
            assert points
            return points

        return call

    def compliance(span: timedelta, bucket: Any) -> Callable[[], Awaitable[Any]]:
        async def call() -> Any:
            async with sessions() as session:
                points = await charts.compliance(
                    session, start=now - span, end=now, bucket=bucket, categories=None
                )
            assert points
            return points

        return call

    try:
        day, month = timedelta(hours=24), timedelta(days=DAYS)
        hour_b, day_b = timedelta(hours=1), timedelta(days=1)
        cases = [
            ("repo health-history 24h/1h", history(day, hour_b)),
            ("repo health-history 30d/1d", history(month, day_b)),
            ("repo compliance 24h/hour", compliance(day, "hour")),
            ("repo compliance 30d/day", compliance(month, "day")),
        ]
        for name, call in cases:
            results.append((name, *await timed(repeat, call)))
    finally:
        await engine.dispose()

    try:
        app = build_app(url)
    except Exception as error:  # the app is optional here; say why it was left out
        print(f"  HTTP endpoints skipped: the app does not build: {type(error).__name__}: {error}")
        return results
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for name, path, params in [
                ("HTTP health-history 24h/1h", "health-history", {"range": "24h", "bucket": "1h"}),
                ("HTTP health-history 30d/1d", "health-history", {"range": "30d", "bucket": "1d"}),
                ("HTTP compliance 24h/hour", "compliance", {"range": "24h", "bucket": "hour"}),
                ("HTTP compliance 30d/day", "compliance", {"range": "30d", "bucket": "day"}),
                # What the dashboard's pages call.
                ("HTTP dashboard overview", "/api/overview", {}),
                ("HTTP provider daily 90d", "/api/providers/binance/daily", {"days": "90"}),
                ("HTTP provider outcomes 30d", "/api/providers/binance/outcomes", {"range": "30d"}),
            ]:

                async def get(path: str = path, params: dict = params) -> Any:
                    url = path if path.startswith("/") else f"/api/charts/{path}"
                    response = await client.get(url, params=params)
                    assert response.status_code == 200, response.text
                    return response

                results.append((name, *await timed(repeat, get)))

        from apiwatch.api.public import status_page_data

        async def status_page() -> Any:  # uncached: what each 10 s of /status.json costs
            return await status_page_data(app.state.runtime)

        results.append(("status page data (uncached)", *await timed(repeat, status_page)))
    return results


@contextlib.asynccontextmanager
async def scratch_database(db: str, n: int, end: datetime) -> AsyncIterator[tuple[str, int]]:
    """A fresh, migrated database (a SQLite file in /tmp, or `PG_DATABASE`) filled with `n`
    attempts ending at `end`: (its URL, compliance rows); removed afterwards."""
    tmp: tempfile.TemporaryDirectory[str] | None = None
    if db == "sqlite":
        tmp = tempfile.TemporaryDirectory(prefix="bench_", dir="/tmp")
        path = Path(tmp.name) / "bench.db"
        url = f"sqlite+aiosqlite:///{path}"
    else:
        await pg_admin(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
        await pg_admin(f'CREATE DATABASE "{PG_DATABASE}"')
        url = make_url(PG_URL).set(database=PG_DATABASE).render_as_string(hide_password=False)
    try:
        await upgrade(url)
        if db == "sqlite":
            planned = await asyncio.to_thread(fill_sqlite, path, n, end)
        else:
            planned = await fill_postgres(url, n, end)
        yield url, planned
    finally:
        if tmp is not None:
            tmp.cleanup()
        else:
            await pg_admin(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')


def bench_arguments(description: str, repeat: int) -> argparse.Namespace:
    """--rows, --db and --repeat, as every database benchmark takes them."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument(
        "--db", nargs="+", choices=["sqlite", "postgres"], default=["sqlite", "postgres"]
    )
    parser.add_argument("--repeat", type=int, default=repeat)
    return parser.parse_args()


async def run_one(db: str, n: int, repeat: int) -> None:
    end = utcnow()
    started = time.perf_counter()
    async with scratch_database(db, n, end) as (url, planned):
        fill_s = time.perf_counter() - started
        print(f"{db} {n:,} attempts (+{planned:,} compliance rows): filled in {fill_s:.1f} s")

        engine = create_engine(url)
        try:
            async with create_sessionmaker(engine)() as session:
                started = time.perf_counter()
                written = await rollups.roll_up(
                    session, kind="probe", start=end - timedelta(days=DAYS), end=end,
                    ladder=LADDER, now=end,
                )  # fmt: skip
                rollup_s = time.perf_counter() - started
                started = time.perf_counter()
                await rollups.roll_up_recent(session, kind="probe", now=end, ladder=LADDER)
                recent_ms = (time.perf_counter() - started) * 1000
        finally:
            await engine.dispose()
        print(f"  roll-up of {DAYS} days: {rollup_s:.1f} s ({written:,} hourly rows)")
        print(f"  roll_up_recent (2 hours): {recent_ms:.0f} ms")
        if url.startswith("sqlite"):
            path = Path(make_url(url).database or "")
            print(f"  database file: {path.stat().st_size / 1e6:,.0f} MB")

        results = await measure(url, repeat, end)
        print(f"  | query ({repeat} runs) | p50 ms | p95 ms |")
        print("  |---|---|---|")
        for name, p50, p95 in results:
            print(f"  | {name} | {p50:.1f} | {p95:.1f} |")


async def main() -> None:
    args = bench_arguments(__doc__.splitlines()[0], repeat=30)
    for n in args.rows:
        for db in args.db:
            await run_one(db, n, args.repeat)


if __name__ == "__main__":
    asyncio.run(main())
