"""Inbound protection overhead: req/s of one uvicorn worker serving a trivial JSON GET,
bare and behind each protection layer, measured with wrk in one interleaved run.

Run: .venv/bin/python bench/inbound_overhead.py [--rounds 3] [--duration 10] [--warmup 3]
     [--connections 32] [--base DIR]
     [--variants bare,instrumentator,slowapi,apiwatch-middleware,apiwatch-memory,apiwatch-redis]

Variants (servers in bench/inbound_apps.py, one uvicorn process each, uvloop + httptools,
access log off):
  bare             FastAPI, one route (/api/items/{item_id})
  instrumentator   + prometheus-fastapi-instrumentator
  slowapi          + slowapi (decorator form) counting per API key in three windows
                   (minute, hour, day) that are never reached, its rate-limit headers on
  apiwatch-middleware
                   + apiwatch.inbound alone: key check, three windows in memory, nine
                   rate-limit headers, each usage record handed to a callable that drops it
  apiwatch-memory  the whole apiwatch path: the same, with the usage records queued to
                   apiwatch's batched Recorder writing api_usage to SQLite
  apiwatch-redis   the same with the windows in Redis (APIWATCH_BENCH_REDIS_URL, default
                   redis://127.0.0.1:6379/0; left out, with the reason, when unreachable)

Every round runs every variant (a fresh server, a warm-up, then the measurement); the
order rotates per round so no variant always follows another. With two or more CPUs the
server is pinned to CPU 0 and wrk to CPU 1 (taskset), so they do not trade places; the
medians and the ratio to bare are printed as a Markdown table. Beside req/s the table has
the server process's CPU time per request (all its threads, from /proc; for Redis variants
also the Redis server's, from INFO cpu): on a machine shared with other work, req/s moves
with the neighbours' load, CPU per request much less.

Diagnostic variants, not run by default: apiwatch-redis-norecord (the middleware alone with
the windows in Redis, its usage records discarded) and nine-headers (a pass-through
middleware adding nine constant headers: what sending the nine rate-limit headers through
uvicorn costs any layer, the floor under apiwatch-middleware).

A run with any non-2xx response or socket error fails the benchmark: it would not be
measuring the allowed path. For the apiwatch variants the rows the recorder wrote are
counted afterwards, to show the usage logging happened; with Redis the mean number of hits
per script call (the limiter batches concurrent hits) is printed per run.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from local_servers import free_port

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
VARIANTS = (
    "bare",
    "instrumentator",
    "slowapi",
    "apiwatch-middleware",
    "apiwatch-memory",
    "apiwatch-redis",
)
DIAGNOSTIC = ("apiwatch-redis-norecord", "nine-headers")
REDIS_URL = os.environ.get("APIWATCH_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
KEY = "aw_bench-" + uuid.uuid4().hex
PATH = "/api/items/42"


def pinned(cpu: int | None, command: list[str]) -> list[str]:
    return command if cpu is None else ["taskset", "-c", str(cpu), *command]


def redis_reachable() -> str | None:
    """None when Redis answers, else why not."""
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
        client.ping()
        client.close()
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return None


class Server:
    def __init__(
        self, variant: str, db: Path, prefix: str, cpu: int | None, base: Path | None = None
    ) -> None:
        self.port = free_port()
        name, _, tag = variant.partition("@")
        env = {
            **os.environ,
            "INBOUND_BENCH_VARIANT": name,
            "INBOUND_BENCH_KEY": KEY,
            "INBOUND_BENCH_DB": str(db),
            "INBOUND_BENCH_REDIS": REDIS_URL,
            "INBOUND_BENCH_PREFIX": prefix,
        }
        cwd = ROOT
        if tag == "base" and base is not None:
            # The same app module, with `apiwatch` imported from the other source tree (run
            # from there: `python -m` puts the working directory first on the path).
            env["PYTHONPATH"] = str(base)
            cwd = base
        command = [
            PYTHON,
            "-m",
            "uvicorn",
            "inbound_apps:app",
            "--app-dir",
            str(ROOT / "bench"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ]
        self.process = subprocess.Popen(
            pinned(cpu, command),
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.url = f"http://127.0.0.1:{self.port}{PATH}"
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        request = urllib.request.Request(self.url, headers={"X-API-Key": KEY})
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"server exited early:\n{self.process.stdout.read()}")  # type: ignore[union-attr]
            try:
                with urllib.request.urlopen(request, timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("server did not start within 30 s")

    def stop(self) -> str:
        self.process.send_signal(signal.SIGINT)
        try:
            output, _ = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            output, _ = self.process.communicate()
        return output or ""


def wrk(url: str, *, seconds: int, connections: int, cpu: int | None) -> tuple[float, int]:
    """(requests per second, requests completed)."""
    command = pinned(
        cpu,
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            # wrk's default 2 s counts a reply as a socket error; on a machine shared with
            # other work a stalled server process is not a failed request.
            "--timeout",
            "10s",
            "-H",
            f"X-API-Key: {KEY}",
            url,
        ],
    )
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    if bad or errors:
        raise SystemExit(f"wrk saw failures, the run is not valid:\n{output}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    if rate is None or total is None:
        raise SystemExit(f"cannot read wrk's output:\n{output}")
    return float(rate.group(1)), int(total.group(1))


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def redis_cpu_s() -> float | None:
    """CPU seconds the Redis server has used so far (None when not measured)."""
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        info = client.info("cpu")
        client.close()
    except Exception:
        return None
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def count_rows(db: Path) -> int:
    with sqlite3.connect(db) as connection:
        return int(connection.execute("SELECT count(*) FROM api_usage").fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    parser.add_argument(
        "--base",
        help="another source tree (e.g. an export of the main branch): each apiwatch variant "
        "also runs, as <variant>@base, with apiwatch imported from there, in the same rounds",
    )
    args = parser.parse_args()

    if shutil.which("wrk") is None:
        raise SystemExit(
            "wrk is not installed: `apt-get install -y wrk` (Debian/Ubuntu) or "
            "`brew install wrk` (macOS), then run this again."
        )
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    base = Path(args.base).resolve() if args.base else None
    if base is not None:
        if not (base / "apiwatch" / "__init__.py").is_file():
            raise SystemExit(f"--base {base}: no apiwatch package there")
        variants += [f"{v}@base" for v in variants if v.startswith("apiwatch")]
    unknown = {v for v in variants if not v.endswith("@base")} - set(VARIANTS) - set(DIAGNOSTIC)
    if unknown or "bare" not in variants:
        raise SystemExit(f"variants must include bare and be among {VARIANTS}")
    redis_variants = [v for v in variants if "redis" in v]
    if redis_variants and (reason := redis_reachable()):
        print(
            f"{', '.join(redis_variants)} left out: Redis at {REDIS_URL} is unreachable ({reason})"
        )
        variants = [v for v in variants if v not in redis_variants]

    pin = not args.no_pin and (os.cpu_count() or 1) >= 2 and shutil.which("taskset")
    server_cpu, wrk_cpu = (0, 1) if pin else (None, None)
    prefix = f"apiwatch:bench:{uuid.uuid4().hex}"
    results: dict[str, list[float]] = {v: [] for v in variants}
    # Server CPU per request (µs): steadier than req/s when other work shares the machine.
    cpu_us: dict[str, list[float]] = {v: [] for v in variants}
    redis_us: dict[str, list[float]] = {v: [] for v in variants}
    workdir = Path(tempfile.mkdtemp(prefix="inbound-bench-"))
    print(
        f"{args.rounds} rounds x {len(variants)} variants, {args.duration:g} s each after "
        f"{args.warmup:g} s warm-up, wrk -t1 -c{args.connections}, "
        + ("server on CPU 0, wrk on CPU 1" if pin else "not pinned"),
        flush=True,
    )
    try:
        for round_number in range(args.rounds):
            shift = round_number % len(variants)
            for variant in variants[shift:] + variants[:shift]:
                db = workdir / f"{variant}.db"
                server = Server(variant, db, prefix, server_cpu, base)
                try:
                    wrk(server.url, seconds=args.warmup, connections=args.connections, cpu=wrk_cpu)
                    cpu_before, redis_before = process_cpu_s(server.process.pid), redis_cpu_s()
                    rate, total = wrk(
                        server.url, seconds=args.duration, connections=args.connections, cpu=wrk_cpu
                    )
                    cpu_after, redis_after = process_cpu_s(server.process.pid), redis_cpu_s()
                finally:
                    output = server.stop()
                results[variant].append(rate)
                cpu_us[variant].append((cpu_after - cpu_before) / total * 1e6)
                if "redis" in variant and redis_before is not None and redis_after is not None:
                    redis_us[variant].append((redis_after - redis_before) / total * 1e6)
                note = ""
                if variant.startswith("apiwatch"):
                    written = re.search(r"recorder: written=.*", output)
                    note = f"  ({written.group(0) if written else output.strip()[-300:]})"
                print(
                    f"round {round_number + 1} {variant:24} {rate:8,.0f} req/s "
                    f"{cpu_us[variant][-1]:6.1f} µs CPU/request{note}",
                    flush=True,
                )
        rows = {
            v: count_rows(workdir / f"{v}.db")
            for v in variants
            if v.partition("@")[0] in ("apiwatch-memory", "apiwatch-redis")
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if any("redis" in v for v in variants):
            _delete_redis_prefix(prefix)

    bare = statistics.median(results["bare"])
    bare_cpu = statistics.median(cpu_us["bare"])
    print()
    print(
        "| variant | req/s per round | median req/s | ratio to bare "
        "| server CPU µs/request (median) | CPU ratio (bare/variant) |"
    )
    print("|---|---|--:|--:|--:|--:|")
    for variant in variants:
        rates = results[variant]
        median = statistics.median(rates)
        cpu = statistics.median(cpu_us[variant])
        per_round = " · ".join(f"{rate:,.0f}" for rate in rates)
        extra = ""
        if redis_us[variant]:
            extra = f" (+ Redis server {statistics.median(redis_us[variant]):.1f})"
        print(
            f"| {variant} | {per_round} | {median:,.0f} | {median / bare:.2f} "
            f"| {cpu:.1f}{extra} | {bare_cpu / cpu:.2f} |"
        )
    for variant, count in rows.items():
        print(f"\n{variant}: {count:,} rows in api_usage (warm-ups and readiness checks included)")


def _delete_redis_prefix(prefix: str) -> None:
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
    except Exception as error:
        print(f"could not delete the bench's Redis keys ({prefix}*): {error}")


if __name__ == "__main__":
    main()
