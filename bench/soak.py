"""Memory soak: apiwatch under the demo's fault timetable for a bounded time, measured.

    python bench/soak.py                      # one hour (the default)
    python bench/soak.py --minutes 25 --report-every 300

A child process runs apiwatch (the demo: simulator with faults on a timetable, health checks
every 2 s, SQLite in a temporary directory) with tracemalloc on and writes a tracemalloc
snapshot every report period. This process reads `/healthz`, `/api/status` and
`/api/providers` every 2 s, and per period prints the child's RSS, open fds, threads, and
probe rows stored versus requests the simulator received. At the end it prints the RSS slope
of the first and second halves (does it level off?) and the allocation sites that grew most
between the first snapshot after warm-up and the last.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import aiohttp
from local_servers import free_port, wait_ready


def _proc(pid: int) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "rss_mb": int(fields["VmRSS"].split()[0]) / 1024,
        "threads": int(fields["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
    }


async def _child(args: argparse.Namespace) -> None:
    """The measured process: the demo, plus a snapshot writer."""
    from apiwatch.demo import demo_keys, run_demo
    from apiwatch.logs import configure_logging
    from apiwatch.settings import Settings

    tracemalloc.start(12)
    for name, value in demo_keys().items():
        os.environ.setdefault(name, value)
    settings = Settings(
        port=args.port,
        upstream_override=f"http://127.0.0.1:{args.sim_port}",
        health_interval_s=2.0,
        database_url=f"sqlite+aiosqlite:///{args.dir}/soak.db",
        public_read=True,
    )
    configure_logging(level="WARNING", json=False)

    async def snapshots() -> None:
        n = 0
        while True:
            await asyncio.sleep(args.report_every)
            tracemalloc.take_snapshot().dump(f"{args.dir}/snap-{n:03d}.tm")
            n += 1

    task = asyncio.create_task(snapshots())
    try:
        await run_demo(settings, sim_port=args.sim_port, say=lambda text: None)
    finally:
        task.cancel()


def _stored(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM connection_attempts").fetchone()[0])
    except sqlite3.Error:
        return -1


async def _reader(base: str, stop: asyncio.Event) -> int:
    errors = 0
    async with aiohttp.ClientSession() as http:
        while not stop.is_set():
            for path in ("/healthz", "/api/status", "/api/providers"):
                try:
                    async with http.get(base + path) as r:
                        await r.read()
                        errors += r.status >= 500
                except aiohttp.ClientError:
                    errors += 1
            await asyncio.sleep(2)
    return errors


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares MB per minute."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    den = sum((t - mx) ** 2 for t, _ in points) or 1.0
    return sum((t - mx) * (v - my) for t, v in points) / den * 60


async def _parent(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="apiwatch-soak-"))
    port, sim_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "APIWATCH_REDIS_URL")}
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--child",
        "--port",
        str(port),
        "--sim-port",
        str(sim_port),
        "--dir",
        str(workdir),
        "--report-every",
        str(args.report_every),
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(60):  # a cold start under tracemalloc on a busy machine is slow
            if child.returncode is not None:
                raise RuntimeError(f"apiwatch exited with {child.returncode} before it was up")
            try:
                await wait_ready(f"http://127.0.0.1:{sim_port}")
                break
            except RuntimeError:
                continue
        async with aiohttp.ClientSession() as http:
            for _ in range(200):
                try:
                    async with http.get(base + "/healthz") as r:
                        if r.status < 500:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
        stop = asyncio.Event()
        reader = asyncio.create_task(_reader(base, stop))
        start = time.monotonic()
        samples: list[tuple[float, float]] = []
        print(f"soak: {args.minutes:g} min, report every {args.report_every:g} s, dir {workdir}")
        print(f"{'min':>6} {'rss MB':>8} {'fds':>5} {'thr':>4} {'stored':>8} {'sent':>8}")
        end = start + args.minutes * 60
        next_report = start
        while time.monotonic() < end:
            now = time.monotonic()
            proc = _proc(child.pid)
            samples.append((now - start, proc["rss_mb"]))
            if now >= next_report:
                stats = f"http://127.0.0.1:{sim_port}/_control/stats"
                async with aiohttp.ClientSession() as http, http.get(stats) as r:
                    sent = (await r.json())["total"]
                print(
                    f"{(now - start) / 60:6.1f} {proc['rss_mb']:8.1f} {proc['fds']:5.0f} "
                    f"{proc['threads']:4.0f} {_stored(workdir / 'soak.db'):8d} {sent:8d}",
                    flush=True,
                )
                next_report += args.report_every
            await asyncio.sleep(min(10.0, max(0.1, end - time.monotonic())))
        stop.set()
        errors = await reader
    finally:
        child.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(child.wait(), 20)
        except TimeoutError:
            child.kill()
    half = [p for p in samples if p[0] >= 120]  # the first two minutes are warm-up
    mid = len(half) // 2
    print(f"read errors (5xx or refused): {errors}")
    print(
        f"RSS slope after warm-up: first half {_slope(half[:mid]):+.3f} MB/min, "
        f"second half {_slope(half[mid:]):+.3f} MB/min"
    )
    snaps = sorted(workdir.glob("snap-*.tm"))
    if len(snaps) >= 2:
        first, last = (
            tracemalloc.Snapshot.load(str(snaps[0])),
            tracemalloc.Snapshot.load(str(snaps[-1])),
        )
        print(f"traced: {_traced(first):.1f} MB -> {_traced(last):.1f} MB; top growth:")
        for stat in last.compare_to(first, "lineno")[:12]:
            print(f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d}  {stat.traceback}")


def _traced(snapshot: tracemalloc.Snapshot) -> float:
    return sum(s.size for s in snapshot.statistics("filename")) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--report-every", type=float, default=600.0, help="seconds")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--sim-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.minutes <= 0 or args.minutes > 24 * 60:
        parser.error("--minutes must be in (0, 1440]")
    if args.child:
        with contextlib.suppress(KeyboardInterrupt):  # the parent's SIGINT ends the run
            asyncio.run(_child(args))
    else:
        asyncio.run(_parent(args))


if __name__ == "__main__":
    main()
