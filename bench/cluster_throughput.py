"""Probes stored per second with 1, 2 and 3 worker processes sharing the work.

Run: .venv/bin/python bench/cluster_throughput.py [--providers 1500] [--interval 1] [--seconds 20]

N generated providers (plus the built-in catalogue) at a health interval of `--interval`
seconds demand N / interval probes per second. For K = 1, 2, 3, K `apiwatch serve --role
worker` processes share them through the real Redis, storing into a fresh PostgreSQL
database; a fast local upstream (an aiohttp app answering `{}` to every path, in its own
process) stands in for the providers. Rows stored per second are counted in the database
over a steady window after every worker has joined, and reported against the demand, with
the CPU seconds the workers used per stored probe. Rounds are interleaved (1, 2, 3, 1, 2,
3, ...) and medians reported: absolute figures move a lot between runs on a shared
machine. On this 2-core machine, three workers and the upstream share two cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
from local_servers import cpu_seconds, free_port, write_catalogue
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parents[1]
APIWATCH = str(Path(sys.executable).with_name("apiwatch"))
PG_ADMIN = os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/0")

UPSTREAM = """
import sys
from aiohttp import web
async def any_path(request):
    return web.Response(body=b"{}", content_type="application/json")
app = web.Application()
app.router.add_route("GET", "/{tail:.*}", any_path)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


async def one_round(k: int, args: argparse.Namespace, catalogue: Path, upstream: str) -> dict:
    db = f"apiwatch_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{db}"')
    await admin.close()
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{db}"
    env = {
        **os.environ,
        "DATABASE_URL": url.replace("postgresql://", "postgresql+asyncpg://"),
        "REDIS_URL": REDIS,
        "APIWATCH_CLUSTER_NAME": f"bench-{uuid.uuid4().hex[:8]}",
        "APIWATCH_CATALOGUE_DIR": str(catalogue),
        "APIWATCH_UPSTREAM_OVERRIDE": upstream,
        "APIWATCH_HEALTH_INTERVAL_S": str(args.interval),
        "APIWATCH_HEARTBEAT_S": "2",
        "APIWATCH_COLLECTION_ENABLED": "false",
        "APIWATCH_PROBE_CONCURRENCY": "200",
        "APIWATCH_ADMIN_KEY": "aw_bench-admin-key-000000000000000000000000",
        "APIWATCH_LOG_LEVEL": "WARNING",
    }
    subprocess.run([APIWATCH, "db", "upgrade"], env=env, check=True, capture_output=True)
    logs = [catalogue.parent / f"worker-{k}-{i}.log" for i in range(k)]
    workers = [
        subprocess.Popen(
            [APIWATCH, "serve", "--role", "worker", "--port", str(free_port())],
            env={**env, "APIWATCH_WORKER_ID": f"w{i}"},
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        for i, log in enumerate(logs)
    ]
    redis = Redis.from_url(REDIS)
    conn = await asyncpg.connect(url)
    try:
        prefix = f"apiwatch:cluster:{env['APIWATCH_CLUSTER_NAME']}:member:"
        deadline = time.monotonic() + 60
        while len([x async for x in redis.scan_iter(match=f"{prefix}*")]) < k:
            if time.monotonic() > deadline:
                for worker, log in zip(workers, logs, strict=True):
                    state = "running" if worker.poll() is None else f"exited {worker.returncode}"
                    tail = log.read_text(errors="replace").splitlines()[-5:]
                    print(f"  {log.name}: {state}", *tail, sep="\n    ", file=sys.stderr)
                raise RuntimeError(f"{k} workers did not all join within 60 s")
            await asyncio.sleep(0.2)
        await asyncio.sleep(args.warmup)
        count = "SELECT count(*) FROM connection_attempts"
        rows0, cpu0, t0 = (
            await conn.fetchval(count),
            [cpu_seconds(w.pid) for w in workers],
            time.monotonic(),
        )
        await asyncio.sleep(args.seconds)
        rows1, cpu1, t1 = (
            await conn.fetchval(count),
            [cpu_seconds(w.pid) for w in workers],
            time.monotonic(),
        )
        stored = (rows1 - rows0) / (t1 - t0)
        cpu = sum(cpu1) - sum(cpu0)
        return {
            "k": k,
            "stored_per_s": stored,
            "cpu_us_per_probe": cpu / max(rows1 - rows0, 1) * 1e6,
        }
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            try:
                w.wait(timeout=20)
            except subprocess.TimeoutExpired:
                w.kill()
        await conn.close()
        keys = [
            x
            async for x in redis.scan_iter(
                match=f"apiwatch:cluster:{env['APIWATCH_CLUSTER_NAME']}:*"
            )
        ]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        await admin.close()


async def main(args: argparse.Namespace) -> None:
    port = free_port()
    upstream = subprocess.Popen([sys.executable, "-c", UPSTREAM, str(port)])
    results: dict[int, list[dict]] = {1: [], 2: [], 3: []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            catalogue = Path(tmp) / "catalogue"  # worker logs go beside it
            catalogue.mkdir()
            write_catalogue(catalogue, args.providers)
            await asyncio.sleep(1)
            for _ in range(args.rounds):
                for k in (1, 2, 3):
                    r = await one_round(k, args, catalogue, f"http://127.0.0.1:{port}")
                    results[k].append(r)
                    print(
                        f"  K={k}: {r['stored_per_s']:.0f} stored/s, "
                        f"{r['cpu_us_per_probe']:.0f} µs CPU/probe",
                        flush=True,
                    )
    finally:
        upstream.terminate()
        upstream.wait()
    demand = (args.providers + 10) / args.interval
    base = statistics.median(r["stored_per_s"] for r in results[1])
    print(
        f"\ndemand ≈ {demand:.0f} probes/s ({args.providers} generated + 10 built-in "
        f"providers every {args.interval:g} s)"
    )
    print(
        f"{'workers':>8} {'stored/s (median)':>18} {'of demand':>10} {'vs 1 worker':>12} "
        f"{'CPU µs/probe':>13}"
    )
    for k, rounds in results.items():
        stored = statistics.median(r["stored_per_s"] for r in rounds)
        cpu = statistics.median(r["cpu_us_per_probe"] for r in rounds)
        print(
            f"{k:>8} {stored:>18.0f} {stored / demand:>10.2f} {stored / base:>12.2f} {cpu:>13.0f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--providers", type=int, default=1500)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
