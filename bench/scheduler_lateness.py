"""Scheduler start lateness: apiwatch's IntervalScheduler vs APScheduler 3 AsyncIOScheduler.

Run: .venv/bin/python bench/scheduler_lateness.py [--jobs 1000 10000] [--interval 30]
     [--rounds 2] [--concurrency 50] [--lag-target-ms 10] [--batch-ms 10]
     [--first-within SECONDS] [--profile DIR]

N jobs run every `interval` seconds; each does one real HTTP GET to the simulator (Binance
ping) through one shared aiohttp session, at most `concurrency` in flight. Lateness is
start - planned, taken when the job body starts (after the concurrency limit, so a run
waiting for a free place counts as late). Each job's first run (within `first-within`, by
default the whole interval) is warm-up; its next `rounds` planned slots are measured, so
"missed" is measured slots that never started (skipped as overlap or missed, or not started
by the end). apiwatch's scheduler lowers its in-flight limit while the event loop lags
beyond `--lag-target-ms` (as `apiwatch serve` does; 0: a fixed limit), and starts the runs
due within `--batch-ms` of a wake-up with it, up to that much early (as `apiwatch serve`
does; 0: each at its own time). An early start counts as lateness below zero.

Planned times: apiwatch reports each run's slot (`current_slot`); APScheduler reports the
`scheduled_run_times` of each submission (EVENT_JOB_SUBMITTED, dispatched before the job's
task first runs). Both schedulers get the same first-run offsets (golden-ratio steps over
the window) and the same limit of in-flight jobs; APScheduler jobs use an IntervalTrigger
with max_instances=1, coalesce=True and misfire_grace_time = the interval. With a window
shorter than the interval, apiwatch moves each job onto a grid spread over the whole
interval after its first run; APScheduler keeps the grid of its start date.

The simulator runs in its own process, and every (scheduler, N) case in a fresh process of
its own, so neither shares an event loop nor inherits another case's heap. `--profile DIR`
writes a cProfile of each case there.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import math
import os
import random
import resource
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from local_servers import free_port, wait_ready

from apiwatch.probe.client import create_session
from apiwatch.runtime.start import SCHEDULER_BATCH_S
from apiwatch.scheduler.loop import IntervalScheduler, Slot, current_slot

GOLDEN_STEP = (math.sqrt(5) - 1) / 2
PING = "/binance/api/v3/ping"


class Tally:
    """What one case saw inside the measured window (slots 1..rounds of every job)."""

    def __init__(self, rounds: int) -> None:
        self.rounds = rounds
        self.lateness: list[float] = []
        self.skipped: Counter[str] = Counter()
        self.errors = 0
        self.finished: set[str] = set()  # jobs whose last measured slot has come

    def in_window(self, k: int) -> bool:
        return 1 <= k <= self.rounds

    def reached(self, job: str, k: int) -> None:
        if k >= self.rounds:
            self.finished.add(job)

    async def until_finished(self, n: int, *, cap_s: float, tail_s: float) -> None:
        """Until every job's last measured slot has started or been skipped (or `cap_s`),
        then `tail_s` more, so runs already due get to start."""
        deadline = time.monotonic() + cap_s
        while len(self.finished) < n and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        await asyncio.sleep(tail_s)


async def get(http: aiohttp.ClientSession, url: str, tally: Tally) -> None:
    try:
        async with http.get(url) as r:
            await r.read()
            if r.status != 200:
                tally.errors += 1
    except (aiohttp.ClientError, TimeoutError):
        tally.errors += 1


async def case_apiwatch(args: argparse.Namespace, tally: Tally) -> None:
    url = args.url + PING
    async with create_session(connection_limit=args.concurrency) as http:
        # on_slot reports every planned slot once, in order: counting them numbers them (a
        # job's grid may move after a quick first run, so planned times alone would not).
        seen: Counter[str] = Counter()
        number: dict[str, int] = {}

        def on_slot(slot: Slot) -> None:
            k = seen[slot.job]
            seen[slot.job] += 1
            tally.reached(slot.job, k)
            if slot.skipped is None:
                number[slot.job] = k  # read by the run's body, which starts next
            elif tally.in_window(k):
                tally.skipped[slot.skipped] += 1

        async def body() -> None:
            now = datetime.now(UTC)
            slot = current_slot.get()
            assert slot is not None
            if tally.in_window(number[slot.job]):
                tally.lateness.append((now - slot.planned_at).total_seconds())
            await get(http, url, tally)

        scheduler = IntervalScheduler(
            concurrency=args.concurrency,
            rng=random.Random(1),
            on_slot=on_slot,
            target_lag_s=args.lag_target_ms / 1000,
            batch_s=args.batch_ms / 1000,
        )
        for i in range(args.n):
            scheduler.add(f"j{i}", args.interval, body, first_within=args.first_within)
        scheduler.start()
        await tally.until_finished(
            args.n, cap_s=args.interval * (args.rounds + 2), tail_s=args.tail
        )
        await scheduler.stop()


async def case_apscheduler(args: argparse.Namespace, tally: Tally) -> None:
    from apscheduler.events import (
        EVENT_JOB_MAX_INSTANCES,
        EVENT_JOB_MISSED,
        EVENT_JOB_SUBMITTED,
        JobEvent,
    )
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from apscheduler.triggers.interval import IntervalTrigger

    interval = args.interval
    url = args.url + PING
    limit = asyncio.Semaphore(args.concurrency)
    async with create_session(connection_limit=args.concurrency) as http:
        start: dict[str, datetime] = {}
        # max_instances=1: at most one submission per job is outstanding, so one value each.
        planned: dict[str, datetime] = {}

        def slot_no(job_id: str, at: datetime) -> int:
            return round((at - start[job_id]).total_seconds() / interval)

        def listener(event: JobEvent) -> None:
            if event.code == EVENT_JOB_SUBMITTED:
                at = event.scheduled_run_times[-1]  # type: ignore[attr-defined]
                planned[event.job_id] = at
                tally.reached(event.job_id, slot_no(event.job_id, at))
                return
            times = getattr(event, "scheduled_run_times", None) or [event.scheduled_run_time]  # type: ignore[attr-defined]
            reason = "missed" if event.code == EVENT_JOB_MISSED else "overlap"
            for at in times:
                k = slot_no(event.job_id, at)
                tally.reached(event.job_id, k)
                tally.skipped[reason] += tally.in_window(k)

        async def body(job_id: str) -> None:
            async with limit:
                now = datetime.now(UTC)
                at = planned[job_id]
                if tally.in_window(slot_no(job_id, at)):
                    tally.lateness.append((now - at).total_seconds())
                await get(http, url, tally)

        scheduler = AsyncIOScheduler(timezone=UTC)
        scheduler.add_listener(
            listener, EVENT_JOB_SUBMITTED | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES
        )
        # Same offsets as IntervalScheduler gives, from a start far enough ahead that adding
        # 10,000 jobs is done before the first is due.
        t0 = datetime.now(UTC) + timedelta(seconds=2)
        phase = random.Random(1).random()
        for i in range(args.n):
            phase = (phase + GOLDEN_STEP) % 1.0
            job_id = f"j{i}"
            offset = min(args.first_within, interval) * phase
            start[job_id] = t0 + timedelta(seconds=offset)
            scheduler.add_job(
                body,
                IntervalTrigger(seconds=interval, start_date=start[job_id], timezone=UTC),
                args=[job_id],
                id=job_id,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=int(interval),
            )
        scheduler.start()
        await tally.until_finished(args.n, cap_s=2 + interval * (args.rounds + 2), tail_s=args.tail)
        scheduler.shutdown(wait=False)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def run_case(args: argparse.Namespace) -> dict[str, Any]:
    import logging

    # APScheduler logs a warning per skipped run; that I/O would be measured too.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    tally = Tally(args.rounds)
    case = case_apiwatch if args.case == "apiwatch" else case_apscheduler
    profiler = cProfile.Profile() if args.profile else None
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    wall0 = time.perf_counter()
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    if profiler:
        profiler.enable()
    runner(case(args, tally))
    if profiler:
        profiler.disable()
        Path(args.profile).mkdir(parents=True, exist_ok=True)
        profiler.dump_stats(Path(args.profile) / f"{args.case}-{args.n}.prof")
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    lateness = tally.lateness
    planned = args.n * args.rounds
    return {
        "scheduler": args.case,
        "jobs": args.n,
        "planned": planned,
        "done": len(lateness),
        "missed": planned - len(lateness),
        "skipped": dict(tally.skipped),
        "errors": tally.errors,
        "p50_ms": percentile(lateness, 50) * 1000,
        "p95_ms": percentile(lateness, 95) * 1000,
        "p99_ms": percentile(lateness, 99) * 1000,
        "max_ms": max(lateness, default=math.nan) * 1000,
        "cpu_pct": 100 * cpu / (time.perf_counter() - wall0),
    }


def main(args: argparse.Namespace) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    sim = subprocess.Popen(
        [sys.executable, "-m", "apiwatch.cli", "simulate", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rows = []
    try:
        asyncio.run(wait_ready(url))
        for n in args.jobs:
            for case in args.schedulers:
                cmd = [
                    sys.executable,
                    __file__,
                    "--case",
                    case,
                    "--n",
                    str(n),
                    "--url",
                    url,
                    "--interval",
                    str(args.interval),
                    "--rounds",
                    str(args.rounds),
                    "--concurrency",
                    str(args.concurrency),
                    "--lag-target-ms",
                    str(args.lag_target_ms),
                    "--batch-ms",
                    str(args.batch_ms),
                    "--first-within",
                    str(args.first_within),
                    "--tail",
                    str(args.tail),
                ]
                if args.profile:
                    cmd += ["--profile", args.profile]
                out = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if out.returncode != 0:
                    sys.stderr.write(out.stderr)
                    raise SystemExit(f"case {case} at {n} jobs failed")
                row = json.loads(out.stdout.strip().splitlines()[-1])
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    finally:
        sim.terminate()
        sim.wait(5)
    print(
        f"interval {args.interval:g} s, {args.rounds} measured slots per job after its first, "
        f"first runs over {args.first_within:g} s, {args.concurrency} in flight, "
        f"{os.cpu_count()} CPUs"
    )
    print(
        "| scheduler | jobs | runs done / planned | missed | p50 ms | p95 ms | p99 ms | max ms "
        "| errors | CPU % |"
    )
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for r in rows:
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(r["skipped"].items()))
        missed = f"{r['missed']:,}" + (f" ({skipped})" if skipped else "")
        print(
            f"| {r['scheduler']} | {r['jobs']:,} | {r['done']:,} / {r['planned']:,} | {missed} "
            f"| {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:.1f} "
            f"| {r['errors']} | {r['cpu_pct']:.0f} |"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--interval", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--lag-target-ms", type=float, default=10.0)
    parser.add_argument(
        "--batch-ms",
        type=float,
        default=SCHEDULER_BATCH_S * 1000,
        help="runs due within this of a wake-up start with it (default: what apiwatch serve uses)",
    )
    parser.add_argument(
        "--first-within", type=float, default=None, help="first-run window (default: interval)"
    )
    parser.add_argument(
        "--schedulers",
        nargs="+",
        default=["apiwatch", "apscheduler"],
        choices=["apiwatch", "apscheduler"],
    )
    parser.add_argument("--profile", default=None, help="write a cProfile per case here")
    parser.add_argument("--tail", type=float, default=3.0, help=argparse.SUPPRESS)
    parser.add_argument("--case", choices=["apiwatch", "apscheduler"], help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    if parsed.first_within is None:
        parsed.first_within = parsed.interval
    if parsed.case:
        print(json.dumps(run_case(parsed)))
    else:
        main(parsed)
