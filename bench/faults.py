"""The fault attacks on a running `apiwatch serve`, measured again: one table of each
figure measured before the fixes and the figure this run measures.

Run: .venv/bin/python bench/faults.py [--items 1,2,3,4,5,6] [--providers 600]
     [--interval 1] [--pg-outage 25] [--redis-outage 20] [--warmup 10]

Every fault is made with real processes: `apiwatch serve` in its own process (killed with
SIGKILL where the first measurement did), a redis-server of this run's own on a free port (SIGKILL,
SIGSTOP), a PostgreSQL database of its own on the local server behind a TCP proxy in this
process that the run cuts, the simulator (in this process) or a counting upstream (its own
process) as the providers, and wrk for unauthenticated traffic.

1. Redis killed for `--redis-outage` s with REDIS_URL set: rows stored meanwhile, log lines
   and tracebacks per minute, what /api/status and /healthz say; then Redis stopped with
   SIGSTOP: the latency of a keyed request.
2. Without Redis, NewsAPI's 100 a day filled, kill -9, restarted `--restarts` times with
   triggers each time: requests the simulator received beyond the 100, and the day's count
   shown just after the first restart.
3. PostgreSQL cut for `--pg-outage` s under `--providers` generated providers every
   `--interval` s (twice: alone, then with wrk sending unauthenticated requests during the
   outage): probe requests the upstream answered versus rows stored once the database is
   back, and the serve process's RSS before, at its peak during, and after.
4. A 16 MiB X-API-Key, 32 connections at once: the answer and the RSS growth; a partial
   head left open: how long the server keeps it.
5. 30 bad keys, then the valid admin key, from one address: the admin key's status.
6. A key in the query string (6 requests): occurrences of the key in the server's log; a
   NUL byte in `?provider=` on PostgreSQL: the status.

Nothing here is a pass/fail: the figures are printed for the record (bench/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from local_servers import free_port, write_catalogue
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from apiwatch.demo import demo_keys
from apiwatch.simulator import Simulator
from apiwatch.storage.migrate import upgrade

ADMIN = "aw_bench-faults-admin-key-00000000000000000000"
PG_ADMIN_URL = os.environ.get(
    "APIWATCH_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)

# The figures measured before the fixes (an earlier version of apiwatch, same attacks).
BEFORE = {
    "1a": "no row is stored (not even `skipped`)",
    "1b": "logs a traceback 11 times a second (2.7 MB in a minute)",
    "1c": "keeps answering health 100 with 10/10 online and a frozen `last_check_at`",
    "1d": "— (no figure; asked: degraded, with the reason)",
    "1e": "makes every keyed request take 5 s",
    "2a": "134 requests went out that day",
    "2b": "NewsAPI at 100/100 of its day showed 11/100 after a kill -9",
    "3a": "dropped 19 % of probe results (~4.5k rows/s, 25 s outage)",
    "3b": "45 % of probe results were lost (23 s outage)",
    "3c": "RSS rose 122 → 237 MB and stayed there",
    "4a": "a 16 MiB `X-API-Key` is answered; 32 such requests took RSS 125 → 354 MB",
    "4b": "a partial header can stay open for over 130 s",
    "5a": "got 429 for the rest of the minute",
    "6a": "refused but written in clear to uvicorn's access log (6 lines)",
    "6b": "a 500 on PostgreSQL",
}

rows_out: list[tuple[str, str, str, str]] = []
T0 = time.monotonic()


def note(message: str) -> None:
    print(f"   {time.monotonic() - T0:6.1f} s  {message}", flush=True)


def record(key: str, what: str, now: str) -> None:
    rows_out.append((key, what, BEFORE[key], now))
    print(f"  [{key}] {what}: {now}", flush=True)


# --- processes -------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024 if match else float("nan")


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


class Serve:
    """`apiwatch serve` in its own process; its stdout and stderr go to `log`."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("APIWATCH_", "REDIS"))}
        self.env = {
            **base,
            "APIWATCH_ADMIN_KEY": ADMIN,
            "APIWATCH_LOG_LEVEL": "WARNING",
            "APIWATCH_API_LIMIT_PER_MINUTE": "1000000",
            "APIWATCH_API_LIMIT_PER_HOUR": "10000000",
            "APIWATCH_API_LIMIT_PER_DAY": "100000000",
            **env,
        }
        self.workdir = workdir
        self.log = workdir / "serve.log"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self, timeout: float = 120.0) -> None:
        self.port = free_port()
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "apiwatch.cli", "serve", "--port", str(self.port)],
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        async with httpx.AsyncClient(timeout=2) as client:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"apiwatch serve exited: {self.log.read_text()[-2000:]}")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(self.url + "/healthz")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise RuntimeError("apiwatch serve did not start")

    def kill(self) -> None:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        """SIGTERM, the way a service manager stops it (queues are written out)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def client(self, key: str | None = ADMIN) -> httpx.AsyncClient:
        headers = {"X-API-Key": key} if key else {}
        return httpx.AsyncClient(base_url=self.url, timeout=30, headers=headers)


class Redis:
    """A redis-server of this run's own on a free port, no persistence."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.directory)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port)

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait()


class Proxy:
    """TCP proxy to PostgreSQL; `cut()` resets every connection and refuses new ones."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.open = True
        self.port = 0
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self.accept, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(OSError):
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.writers -= {writer, up_writer}

    def cut(self) -> None:
        self.open = False
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()

    async def stop(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


class Postgres:
    """A database of this run's own on the local PostgreSQL server, dropped at the end."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.name = f"apiwatch_bench_faults_{uuid.uuid4().hex[:8]}"
        self.url = make_url(admin_url).set(database=self.name)

    async def _admin(self, sql: str) -> None:
        engine = create_async_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                await connection.exec_driver_sql(sql)
        finally:
            await engine.dispose()

    async def create(self) -> None:
        await self._admin(f'CREATE DATABASE "{self.name}"')
        await upgrade(self.url.render_as_string(hide_password=False))

    async def drop(self) -> None:
        await self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def via(self, port: int) -> str:
        return self.url.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)

    async def scalar(self, sql: str, **params: object) -> int:
        engine = create_async_engine(self.url)
        try:
            async with engine.connect() as connection:
                return int((await connection.execute(text(sql), params)).scalar() or 0)
        finally:
            await engine.dispose()


async def sqlite_counts(database: Path) -> dict[str, int]:
    import sqlite3

    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10) as db:
        query = "SELECT outcome, count(*) FROM connection_attempts GROUP BY outcome"
        return dict(db.execute(query).fetchall())


# A counting upstream for item 3, in its own process: `{}` to every path; /_count says how
# many requests of the generated providers (`/gen…/ping`) it answered.
UPSTREAM = """
import sys
import uvicorn

count = 0
BODY = b"{}"
HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"2")]

async def app(scope, receive, send):
    global count
    if scope["type"] != "http":
        return
    body = BODY
    if scope["path"] == "/_count":
        body = str(count).encode()
    elif scope["path"].startswith("/gen"):
        count += 1
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            access_log=False, lifespan="off")
"""


# --- item 1: Redis ---------------------------------------------------------------------


async def redis_item(args: argparse.Namespace, tmp: Path) -> None:
    print(f"1. Redis: kill -9 for {args.redis_outage:g} s, then SIGSTOP", flush=True)
    redis = Redis(tmp)
    redis.start()
    database = tmp / "redis.db"
    try:
        async with Simulator(port=0) as sim:
            serve = Serve(
                tmp,
                {
                    **demo_keys(),
                    "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
                    "REDIS_URL": redis.url,
                    "APIWATCH_UPSTREAM_OVERRIDE": sim.url,
                    "APIWATCH_HEALTH_INTERVAL_S": "2",
                    "APIWATCH_LOG_LEVEL": "INFO",  # the default: what an operator's log gets
                },
            )
            await serve.start()
            try:
                async with serve.client() as client:
                    await asyncio.sleep(args.warmup / 2)
                    log_base, base_at = serve.log.stat().st_size, time.monotonic()
                    await asyncio.sleep(args.warmup / 2)
                    counts0 = await sqlite_counts(database)
                    log0, base_s = serve.log.stat().st_size, time.monotonic() - base_at
                    redis.signal(signal.SIGKILL)
                    redis.process.wait()  # type: ignore[union-attr]
                    killed = time.monotonic()
                    await asyncio.sleep(args.redis_outage / 2)
                    status = (await client.get("/api/status")).json()
                    age = time.time() - datetime.fromisoformat(status["last_check_at"]).timestamp()
                    healthz = (await client.get("/healthz")).json()
                    await asyncio.sleep(args.redis_outage / 2)
                    counts1 = await sqlite_counts(database)
                    log1 = serve.log.stat().st_size
                    outage = time.monotonic() - killed
                    redis.start()  # same port
                    back = time.monotonic()
                    while (await client.get("/healthz")).json()["status"] != "ok":
                        if time.monotonic() - back > 30:
                            break
                        await asyncio.sleep(0.05)
                    recovered = time.monotonic() - back
                    await asyncio.sleep(1.5)
                    redis.signal(signal.SIGSTOP)
                    took = []
                    try:
                        for _ in range(20):
                            started = time.perf_counter()
                            response = await client.get("/api/providers")
                            took.append((time.perf_counter() - started) * 1000)
                            assert response.status_code == 200, response.text
                    finally:
                        redis.signal(signal.SIGCONT)
            finally:
                serve.stop()
    finally:
        redis.stop()
    stored = {k: counts1.get(k, 0) - counts0.get(k, 0) for k in counts1}
    stored = {k: v for k, v in stored.items() if v}
    record(
        "1a",
        f"rows stored in {outage:.0f} s of Redis killed (probes every 2 s)",
        f"{sum(stored.values())} ({', '.join(f'{k} {v}' for k, v in sorted(stored.items()))})",
    )
    text = serve.log.read_bytes()
    before, during = log_lines(text[log_base:log0]), log_lines(text[log0:log1])
    per_min = 60 / outage
    record(
        "1b",
        "log during the outage (INFO, the default; access log left out)",
        f"{during['lines'] * per_min:.0f} lines/min "
        f"({during['bytes'] * per_min / 1024:.1f} KiB/min; "
        f"{before['lines'] * 60 / base_s:.0f} lines/min before the kill), {during['tracebacks']} "
        f"tracebacks; {during['warning+']} warning/error lines in {outage:.0f} s: "
        f"{during['names']}; the rest: {during['info']}",
    )
    counts = status["counts"]
    record(
        "1c",
        "/api/status mid-outage",
        f"state {status['state']}, health {status['health_score']}, "
        + ", ".join(f"{v} {k}" for k, v in counts.items() if v)
        + f" of {status['providers_enabled']}, last_check_at {age:.1f} s old, "
        f"dependencies.redis.ok {status['dependencies']['redis']['ok']}",
    )
    reason = (healthz["reasons"] or [""])[0]
    short = f"{reason[:40]} …; {reason.split(';')[-1].strip()}" if ";" in reason else reason
    record("1d", "/healthz mid-outage", f"{healthz['status']}: {short}")
    record(
        "1e",
        "GET /api/providers with a key while Redis is SIGSTOPped (20 requests)",
        f"first {took[0]:.0f} ms, median {statistics.median(took):.0f} ms, max {max(took):.0f} ms "
        f"(recovery after restart: {recovered:.1f} s)",
    )


def log_lines(chunk: bytes) -> dict:
    """apiwatch's JSON log lines in `chunk`, uvicorn's access lines of this run's own
    requests left out: their count, bytes, warnings and errors (by event), tracebacks."""
    import json

    found: dict = {"lines": 0, "bytes": 0, "warning+": 0, "tracebacks": 0, "names": {}, "info": {}}
    for line in chunk.decode(errors="replace").splitlines():
        if '"GET /' in line or '"POST /' in line:
            continue
        found["lines"] += 1
        found["bytes"] += len(line) + 1
        found["tracebacks"] += "Traceback" in line
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("level") in ("warning", "error", "critical"):
            found["warning+"] += 1
            name = str(entry.get("event", ""))[:40].split(":")[0]
            found["names"][name] = found["names"].get(name, 0) + 1
        else:
            name = str(entry.get("event", ""))[:40].split(":")[0]
            found["info"][name] = found["info"].get(name, 0) + 1
    for part in ("names", "info"):
        found[part] = ", ".join(f"{k} x{v}" for k, v in sorted(found[part].items()))
    return found


# --- item 2: restart without Redis -----------------------------------------------------


async def newsapi_triggers(serve: Serve, times: int) -> list[str]:
    found = []
    async with serve.client() as client:
        for _ in range(times):
            response = await client.post("/api/schedule/trigger", json={"provider": "newsapi"})
            found += [r["outcome"] for r in response.json()["results"]]
    return found


async def day_used(serve: Serve) -> str:
    async with serve.client() as client:
        body = (await client.get("/api/rate-limits", params={"provider": "newsapi"})).json()
    day = next(w for w in body["windows"] if w["window"] == "day")
    return f"{day['used']}/{day['limit']}"


async def restart_item(args: argparse.Namespace, tmp: Path) -> None:
    print(f"2. restart without Redis: NewsAPI's day filled, kill -9 x {args.restarts}", flush=True)
    async with Simulator(port=0) as sim:
        serve = Serve(
            tmp,
            {
                "DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'restart.db'}",
                "APIWATCH_UPSTREAM_OVERRIDE": sim.url,
                "APIWATCH_SCHEDULER_ENABLED": "false",
                "NEWSAPI_KEY": "bench-newsapi-key-0000",
            },
        )
        try:
            await serve.start()
            outcomes = await newsapi_triggers(serve, 105)
            filled = await day_used(serve)
            await asyncio.sleep(0.5)  # the recorder's batch interval
            serve.kill()
            shown = []
            for _ in range(args.restarts):  # a crash loop, triggering each time
                await serve.start()
                shown.append(await day_used(serve))
                outcomes += await newsapi_triggers(serve, 10)
                await asyncio.sleep(0.5)
                serve.kill()
        finally:
            serve.stop()
        sent = sim.stats()["providers"]["newsapi"]["requests"]
    record(
        "2a",
        f"NewsAPI requests beyond its 100 a day ({args.restarts} kill -9 + restart, "
        f"{len(outcomes)} triggers)",
        f"{sent - 100} (simulator received {sent})",
    )
    record("2b", "day window shown after each restart", f"{filled} before; " + ", ".join(shown))


# --- item 3: PostgreSQL outage under load -----------------------------------------------


async def pg_outage_run(args: argparse.Namespace, tmp: Path, pg: Postgres, wrk: bool) -> dict:
    proxy = Proxy((pg.url.host or "127.0.0.1", pg.url.port or 5432))
    await proxy.start()
    catalogue = tmp / "providers"
    if not catalogue.exists():
        catalogue.mkdir()
        write_catalogue(catalogue, args.providers)
    spill = tmp / f"spill-{int(wrk)}"
    port = free_port()
    upstream_process = subprocess.Popen([sys.executable, "-c", UPSTREAM, str(port)])
    wait_port(port)
    upstream = f"http://127.0.0.1:{port}"
    serve = Serve(
        tmp,
        {
            "DATABASE_URL": pg.via(proxy.port),
            "APIWATCH_CATALOGUE_DIR": str(catalogue),
            "APIWATCH_UPSTREAM_OVERRIDE": upstream,
            "APIWATCH_HEALTH_INTERVAL_S": str(args.interval),
            "APIWATCH_COLLECTION_ENABLED": "false",
            "APIWATCH_PROBE_CONCURRENCY": "200",
            "APIWATCH_SPILL_DIR": str(spill),
            "APIWATCH_RECORDER_MAX_QUEUE": str(args.max_queue),
        },
    )
    gen_rows = "SELECT count(*) FROM connection_attempts WHERE provider LIKE 'gen%'"
    result: dict = {}

    def spilled() -> int:
        return sum(f.stat().st_size for f in spill.glob("recorder-*.jsonl"))

    async with httpx.AsyncClient(timeout=30) as http:

        async def sent() -> int:
            return int((await http.get(upstream + "/_count")).text)

        rows0, sent0 = await pg.scalar(gen_rows), 0
        try:
            await serve.start()
            note("serve started")
            await asyncio.sleep(args.warmup)
            r0, s0, t0 = await pg.scalar(gen_rows), await sent(), time.monotonic()
            await asyncio.sleep(5)
            r1, s1, t1 = await pg.scalar(gen_rows), await sent(), time.monotonic()
            result["rate"] = (r1 - r0) / (t1 - t0)
            result["probe_rate"] = (s1 - s0) / (t1 - t0)
            result["rss_before"] = rss_mb(serve.pid)
            proxy.cut()
            note(
                f"database cut (wrk: {wrk}); before it {result['probe_rate']:.0f} probes/s, "
                f"{result['rate']:.0f} rows/s stored, spill {spilled()} bytes"
            )
            flood = None
            if wrk:
                flood = await asyncio.create_subprocess_exec(
                    "wrk", "-t1", "-c20", f"-d{args.pg_outage:g}s", f"{serve.url}/api/providers",
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                )  # fmt: skip
            peak = result["rss_before"]
            statuses: dict[int, int] = {}
            cut_at = time.monotonic()
            async with serve.client() as client:
                while time.monotonic() - cut_at < args.pg_outage:
                    peak = max(peak, rss_mb(serve.pid))
                    with contextlib.suppress(httpx.HTTPError):
                        code = (await client.get("/api/status")).status_code
                        statuses[code] = statuses.get(code, 0) + 1
                    await asyncio.sleep(0.5)
            if flood is not None:
                out = (await flood.communicate())[0].decode()
                found = re.search(r"(\d+) requests in", out)
                result["wrk_requests"] = int(found.group(1)) if found else -1
            result["spilled"] = spilled()
            result["rss_peak"] = max(peak, rss_mb(serve.pid))
            result["status_codes"] = statuses
            proxy.open = True
            note(f"database back; spill {result['spilled']} bytes")
            back = last = time.monotonic()
            async with serve.client() as client:
                while time.monotonic() - back < args.drain_cap:
                    health = (await client.get("/healthz")).json()
                    result["rss_peak"] = max(result["rss_peak"], rss_mb(serve.pid))
                    if health["status"] == "ok" and not spilled():
                        break
                    if time.monotonic() - last > 10:
                        last = time.monotonic()
                        note(f"draining: /healthz {health['status']}, spill {spilled()} bytes")
                    await asyncio.sleep(0.2)
            result["drained_s"] = time.monotonic() - back
            result["drained"] = not spilled()
            result["spill_left"] = spilled()
            note("drained" if result["drained"] else "not drained under load")
            # Sent versus stored for the probes started before this instant. The load is
            # then held (the upstream SIGSTOPped: probes wait for an answer), so what is
            # still queued or spilled gets written, and counted.
            at, result["sent"] = datetime.now(UTC), await sent() - sent0
            upstream_process.send_signal(signal.SIGSTOP)
            stopped = time.monotonic()
            async with serve.client() as client:
                while time.monotonic() - stopped < args.drain_cap:
                    text_ = (await client.get("/metrics")).text
                    depth = re.search(r"^apiwatch_recorder_queue_depth (\S+)", text_, re.M)
                    if depth and float(depth.group(1)) < 250 and not spilled():
                        break
                    await asyncio.sleep(0.5)
                dropped = re.search(r"^apiwatch_recorder_rows_dropped\S* (\S+)", text_, re.M)
                result["dropped"] = float(dropped.group(1)) if dropped else float("nan")
            result["written_after_s"] = time.monotonic() - stopped
            # Probes the upstream took but had not answered finish now (stored as answered
            # or timed out), within the settle time below.
            upstream_process.send_signal(signal.SIGCONT)
            note(f"load stopped; written {result['written_after_s']:.0f} s later")
            await asyncio.sleep(args.settle)
            result["rss_after"] = rss_mb(serve.pid)
            stored = await pg.scalar(gen_rows + " AND started_at < :at", at=at)
            result["stored"] = stored - rows0
        finally:
            serve.kill()  # counted already; nothing is measured after this
            await proxy.stop()
            upstream_process.kill()
            upstream_process.wait()
    result["lost_pct"] = 100 * (1 - result["stored"] / max(result["sent"], 1))
    return result


async def postgres_item(args: argparse.Namespace, tmp: Path, pg: Postgres) -> None:
    print(
        f"3. PostgreSQL cut for {args.pg_outage:g} s under {args.providers} providers every "
        f"{args.interval:g} s",
        flush=True,
    )
    alone = await pg_outage_run(args, tmp, pg, wrk=False)
    flooded = await pg_outage_run(args, tmp, pg, wrk=True)
    for key, run, label in (("3a", alone, "no other traffic"), ("3b", flooded, "wrk during it")):
        extra = ""
        if "wrk_requests" in run:
            extra = f"; wrk sent {run['wrk_requests']:,.0f} unauthenticated requests"
        if run["drained"]:
            drain = f"written back {run['drained_s']:.0f} s after the database was back"
        else:
            drain = (
                f"NOT written back under load within {run['drained_s']:.0f} s (spill file "
                f"{run['spill_left'] / 2**20:.1f} MiB and growing), written "
                f"{run['written_after_s']:.0f} s after the load stopped"
            )
        record(
            key,
            f"probe results lost, {args.pg_outage:g} s outage at {run['probe_rate']:,.0f} "
            f"probes/s ({label}; memory queue {args.max_queue:,} rows, then the spill file)",
            f"{run['lost_pct']:.2f} % ({run['stored']:,.0f} stored of {run['sent']:,.0f} sent; "
            f"{run['spilled'] / 2**20:.1f} MiB spilled, {drain}{extra}; /api/status during "
            "the outage: "
            + ", ".join(f"{n}x {c}" for c, n in sorted(run["status_codes"].items()))
            + ")",
        )
    record(
        "3c",
        "RSS before → peak during/drain → after (with wrk)",
        f"{flooded['rss_before']:.0f} → {flooded['rss_peak']:.0f} → {flooded['rss_after']:.0f} MB "
        f"(alone: {alone['rss_before']:.0f} → {alone['rss_peak']:.0f} → "
        f"{alone['rss_after']:.0f} MB)",
    )


# --- items 4, 5, 6: one server on PostgreSQL ----------------------------------------------


async def oversized(port: int, size: int) -> tuple[str, int]:
    """Send a head with a `size`-byte X-API-Key; (the server's first response line, or how
    the connection ended, and the bytes it took before it stopped reading)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def answer() -> bytes:
        with contextlib.suppress(ConnectionError):
            return await reader.read(4096)
        return b""

    answered = asyncio.create_task(answer())  # read while sending: a 431 comes before the end
    writer.write(b"GET /api/status HTTP/1.1\r\nHost: x\r\nX-API-Key: ")
    sent = 0
    chunk = b"k" * 65536
    with contextlib.suppress(ConnectionError, TimeoutError):
        while sent < size and not answered.done():
            writer.write(chunk)
            await asyncio.wait_for(writer.drain(), 10)
            sent += len(chunk)
        if not answered.done():
            writer.write(b"\r\n\r\n")
            await writer.drain()
    try:
        first = await asyncio.wait_for(answered, 10)
    except TimeoutError:
        first = b""
    writer.transport.abort()
    line = first.split(b"\r\n", 1)[0].decode(errors="replace") or "closed without an answer"
    return line, sent


async def slow_head(port: int, cap: float) -> float:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /api/status HTTP/1.1\r\nHost: x\r\n")
    await writer.drain()
    started = time.monotonic()
    with contextlib.suppress(TimeoutError, ConnectionError):
        await asyncio.wait_for(reader.read(), cap)
    writer.transport.abort()
    return time.monotonic() - started


async def inbound_items(args: argparse.Namespace, tmp: Path, pg: Postgres) -> None:
    print("4-6. inbound: oversized and slow heads, bad keys, keys in URLs, NUL bytes", flush=True)
    serve = Serve(
        tmp,
        {
            "DATABASE_URL": pg.url.render_as_string(hide_password=False),
            "APIWATCH_SCHEDULER_ENABLED": "false",
            "APIWATCH_LOG_LEVEL": "INFO",  # uvicorn's access log on, as by default
        },
    )
    await serve.start()
    try:
        async with serve.client() as client:
            for _ in range(20):  # warm: the first requests load routes and caches
                await client.get("/api/status")
        rss0 = rss_mb(serve.pid)
        answers = await asyncio.gather(*(oversized(serve.port, 16 * 2**20) for _ in range(32)))
        await asyncio.sleep(1)
        rss1 = rss_mb(serve.pid)
        lines = [line for line, _ in answers]
        kinds = [f"{lines.count(line)}x {line}" for line in sorted(set(lines))]
        taken = max(sent for _, sent in answers)
        record(
            "4a",
            "32 connections each sending a 16 MiB X-API-Key",
            f"{'; '.join(kinds)} (at most {taken / 2**20:.2f} MiB sent on one); "
            f"RSS {rss0:.0f} → {rss1:.0f} MB",
        )
        held = await slow_head(serve.port, args.slow_cap)
        record("4b", "a partial head left open is closed after", f"{held:.1f} s")

        async with serve.client(key=None) as anonymous:
            bad = []
            for i in range(31):
                wrong = {"X-API-Key": f"aw_bad{i}"}
                bad.append((await anonymous.get("/api/providers", headers=wrong)).status_code)
            good = (await anonymous.get("/api/providers", headers={"X-API-Key": ADMIN})).status_code
        record(
            "5a",
            "valid admin key after 30 bad keys from the same address",
            f"{good} (the bad keys got "
            + ", ".join(f"{bad.count(c)}x {c}" for c in sorted(set(bad)))
            + ")",
        )

        log0 = serve.log.stat().st_size
        names = ("api_key", "apikey", "key", "token", "access_token", "x-api-key")
        async with serve.client(key=None) as anonymous:
            codes = [
                (await anonymous.get("/api/providers", params={name: ADMIN})).status_code
                for name in names
            ]
        async with serve.client() as client:
            nul = {
                f"{path}?{next(iter(params))}=": (await client.get(path, params=params)).status_code
                for path, params in (
                    ("/api/alerts", {"provider": "a\x00b"}),
                    ("/api/alerts", {"rule": "\x00"}),
                    ("/api/alerts/history", {"provider": "\x00"}),
                    ("/api/usage", {"route": "/x\x00"}),
                )
            }
        await asyncio.sleep(1)
        log = serve.log.read_bytes()[log0:].decode(errors="replace")
    finally:
        serve.stop()
    record(
        "6a",
        f"the key sent in the query string ({len(names)} requests: {', '.join(names)})",
        f"{log.count(ADMIN)} occurrences in the server's log "
        f"({log.count('***')} masked; answers {sorted(set(codes))})",
    )
    statuses = ", ".join(f"{k} {v}" for k, v in nul.items())
    record("6b", "NUL byte (%00) in a query on PostgreSQL", statuses)


# --- the table ---------------------------------------------------------------------------


def table() -> None:
    print("\n| item | measured | before the fixes | now |\n|---|---|---|---|")
    for key, what, before, now in rows_out:
        print(f"| {key} | {what} | {before} | {now} |")


async def main(args: argparse.Namespace) -> None:
    command = " ".join([".venv/bin/python", "bench/faults.py", *sys.argv[1:]])
    print(f"command: {command}")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)  # fmt: skip
    items = {int(i) for i in args.items.split(",")}
    for tool, needed in (("redis-server", {1}), ("wrk", {3})):
        if items & needed and shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed; leave out items {sorted(needed)}")
    started = time.monotonic()
    pg = Postgres(args.pg_url)
    if items & {3, 4, 5, 6}:
        await pg.create()
    try:
        with contextlib.ExitStack() as stack:
            if args.keep:  # the serve logs and spill files stay for a look afterwards
                tmp = tempfile.mkdtemp(prefix="apiwatch-faults-")
                print(f"work directory (kept): {tmp}")
            else:
                tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="apiwatch-faults-"))
            for item, run in (
                (1, redis_item),
                (2, restart_item),
                (3, postgres_item),
                (4, inbound_items),
            ):
                if item in items or (item == 4 and items & {5, 6}):
                    directory = Path(tmp) / f"item{item}"
                    directory.mkdir()
                    if item in (3, 4):
                        await run(args, directory, pg)
                    else:
                        await run(args, directory)
    finally:
        if items & {3, 4, 5, 6}:
            await pg.drop()
    table()
    print(f"\nwhole run: {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", default="1,2,3,4,5,6", help="which items")
    parser.add_argument("--providers", type=int, default=600, help="item 3's generated providers")
    parser.add_argument("--interval", type=float, default=1.0, help="item 3's health interval, s")
    parser.add_argument("--pg-outage", type=float, default=25.0, help="s")
    parser.add_argument("--redis-outage", type=float, default=20.0, help="s")
    parser.add_argument("--warmup", type=float, default=10.0, help="s after start, items 1, 3")
    parser.add_argument("--restarts", type=int, default=3, help="item 2's kill -9 + restarts")
    parser.add_argument(
        "--max-queue",
        type=int,
        default=2000,
        help="item 3's recorder queue (default setting: 20,000): small, so that this "
        "machine's rate overflows it into the spill file within the outage",
    )
    parser.add_argument("--drain-cap", type=float, default=45.0, help="s to wait for a drain")
    parser.add_argument("--settle", type=float, default=5.0, help="s after the drain, for RSS")
    parser.add_argument("--slow-cap", type=float, default=60.0, help="s to hold a partial head")
    parser.add_argument("--keep", action="store_true", help="keep the logs and spill files")
    parser.add_argument("--pg-url", default=PG_ADMIN_URL, help="PostgreSQL server (admin db)")
    asyncio.run(main(parser.parse_args()))
