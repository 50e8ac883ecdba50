"""Burn rates for many providers over three days of hourly roll-ups: time and peak memory.

Run: .venv/bin/python bench/burn_rates.py [--providers 2000 10000] [--runs 3]
     [--raw-minutes 30] [--base DIR]

The burn-rate alerts are judged every minute, for every provider, over five windows up to
three days long (`SloService.burn_rates`). For each N, a fresh SQLite database gets N
generated providers' `check` roll-ups for the 72 settled hours before now (one row per
provider and hour, with a 44-bucket latency histogram, as the roll-up job writes them) and
the raw attempts of the last `--raw-minutes` (a check every 10 s, one in fifty failed: the
rows a monitor has written since the last roll-ups, which every window ending now reads),
then `burn_rates` runs `--runs` times in a process of its own: wall time and the peak of
memory traced by `tracemalloc` per run. With `--base DIR` (another source tree, e.g. an
export of main) the same database is read by that tree's `burn_rates` in the same run, and
both trees' rates are checked to be the same.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import datetime, timedelta
from pathlib import Path

from local_servers import write_catalogue

APIWATCH = str(Path(sys.executable).with_name("apiwatch"))
HIST = json.dumps([0] * 10 + [5, 40, 10] + [0] * 31)


def seed(database: Path, catalogue: Path, n: int, raw_minutes: int) -> datetime:
    """Fill the database; returns the "now" every tree's runs judge at (the raw rows run
    up to it, so trees judging a few seconds apart would count different rows)."""
    from apiwatch.domain import utcnow
    from apiwatch.storage.repositories.raw_summary import HOUR, floor_to

    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{database}"}
    subprocess.run([APIWATCH, "db", "upgrade"], env=env, check=True, capture_output=True)
    catalogue.mkdir()
    write_catalogue(catalogue, n)
    now = utcnow()
    current = floor_to(now, HOUR)
    stamp = "%Y-%m-%d %H:%M:%S.%f"
    settled = (current + timedelta(minutes=10)).strftime(stamp)
    hours = [(current - k * HOUR).strftime(stamp) for k in range(1, 73)]
    rows = [
        ("check", f"gen{i:05d}", "health", hour, 55, 1, 5500.0, HIST, None, 100.0, 200.0, settled)
        for i in range(n)
        for hour in hours
    ]
    with sqlite3.connect(database) as db:
        db.executemany(
            "INSERT INTO hourly_rollups (kind, subject, detail, hour, count, errors, "
            "latency_ms_sum, latency_hist, outcomes, p50_ms, p95_ms, updated_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
        for second in range(raw_minutes * 60, 0, -10):
            at = (now - timedelta(seconds=second)).strftime(stamp)
            db.executemany(
                "INSERT INTO connection_attempts (provider, endpoint, outcome, status_code, "
                "latency_ms, reason, attempt, final, response_bytes, started_at, location) "
                "VALUES (?,?,?,?,?,'',1,1,2,?,'')",
                [
                    (
                        f"gen{i:05d}",
                        "health",
                        *(("server_error", 500) if (i + second) % 50 == 0 else ("ok", 200)),
                        4.0,
                        at,
                    )
                    for i in range(n)
                ],
            )
    return now


async def measure(database: Path, catalogue: Path, runs: int, now: datetime) -> dict:
    from apiwatch.catalogue.loader import load_catalogue
    from apiwatch.runtime.slo import SloService
    from apiwatch.storage.db import create_engine, create_sessionmaker

    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    service = SloService(
        catalogue=load_catalogue(user_dir=catalogue), sessions=create_sessionmaker(engine)
    )
    times, peaks, rates = [], [], {}
    for _ in range(runs):
        tracemalloc.start()
        began = time.perf_counter()
        found = await service.burn_rates(now=now)
        times.append(time.perf_counter() - began)
        peaks.append(tracemalloc.get_traced_memory()[1] / 1e6)
        tracemalloc.stop()
        rates = {p: {str(w): r for w, r in burns.items()} for p, burns in found.items()}
    await engine.dispose()
    return {"times": times, "peaks": peaks, "rates": rates}


def run_tree(tree: Path | None, database: Path, catalogue: Path, runs: int, now: datetime) -> dict:
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--measure",
            str(database),
            str(catalogue),
            str(runs),
            now.isoformat(),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(args: argparse.Namespace) -> None:
    base = Path(args.base).resolve() if args.base else None
    if base is not None and not (base / "apiwatch" / "__init__.py").is_file():
        sys.exit(f"--base {base}: no apiwatch package there")
    print("| providers | tree | s per run (median) | peak traced MB (median) |")
    print("|--:|---|--:|--:|")
    for n in args.providers:
        with tempfile.TemporaryDirectory() as tmp:
            database, catalogue = Path(tmp) / "burn.db", Path(tmp) / "providers"
            now = seed(database, catalogue, n, args.raw_minutes)
            trees = [("this", None)] + ([("base", base)] if base is not None else [])
            results = {
                name: run_tree(tree, database, catalogue, args.runs, now) for name, tree in trees
            }
            if "base" in results and results["base"]["rates"] != results["this"]["rates"]:
                sys.exit(f"at {n} providers the two trees' burn rates differ")
            for name, result in results.items():
                med = statistics.median
                print(
                    f"| {n:,} | {name} | {med(result['times']):.2f} | {med(result['peaks']):.1f} |",
                    flush=True,
                )


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--measure":
        database, catalogue, runs = Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
        now = datetime.fromisoformat(sys.argv[5])
        print(json.dumps(asyncio.run(measure(database, catalogue, runs, now))))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", type=int, nargs="+", default=[2000, 10000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--raw-minutes", type=int, default=30)
    parser.add_argument("--base", default=None)
    main(parser.parse_args())
