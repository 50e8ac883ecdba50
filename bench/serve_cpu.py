"""CPU per stored probe: `apiwatch serve` against prometheus-blackbox-exporter, same upstream.

Run: .venv/bin/python bench/serve_cpu.py [--providers 1000] [--interval 1] [--seconds 20]
     [--rounds 3] [--base DIR]

The upstream is a raw ASGI app under uvicorn, in its own process, answering `{}` to every
path with keep-alive. Each round runs, one after the other:

- apiwatch: `apiwatch serve` (role all, SQLite in a fresh file, collection off) with N
  generated providers at a health interval of `--interval` seconds, so N / interval probes
  per second are demanded. After a warm-up, over `--seconds`: rows stored per second
  (counted in the database), CPU seconds of the serve process (/proc) per stored row, and
  its peak RSS (VmHWM).
- blackbox_exporter (Debian's prometheus-blackbox-exporter, an `http_2xx` module): wrk
  sends `/probe?target=<upstream>` requests for `--seconds`; CPU of the exporter per probe
  answered. It stores nothing and opens a connection per probe, as it does in production.

With `--base DIR` (another source tree, e.g. an export of main), each round also runs
`apiwatch serve` with `apiwatch` imported from there, so a change is measured against the
code before it in the same run.

Rounds are interleaved and medians reported, with the ratio apiwatch / blackbox per round:
absolute figures move by 40 % between runs on this shared 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from local_servers import cpu_seconds, free_port, write_catalogue

APIWATCH = str(Path(sys.executable).with_name("apiwatch"))

UPSTREAM = """
import sys
import uvicorn

BODY = b"{}"
HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"2")]

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            access_log=False, lifespan="off")
"""

BLACKBOX_CONFIG = """
modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      valid_status_codes: [200]
      preferred_ip_protocol: ip4
"""


def peak_rss_mb(pid: int) -> float:
    match = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024 if match else float("nan")


def wait_port(port: int, timeout: float = 60.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def stored_rows(database: Path) -> int:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10) as db:
        return int(db.execute("SELECT count(*) FROM connection_attempts").fetchone()[0])


def apiwatch_round(
    args: argparse.Namespace, catalogue: Path, upstream: str, base: Path | None = None
) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        database = Path(tmp) / "bench.db"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("APIWATCH_", "REDIS"))},
            "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
            "APIWATCH_CATALOGUE_DIR": str(catalogue),
            "APIWATCH_UPSTREAM_OVERRIDE": upstream,
            "APIWATCH_HEALTH_INTERVAL_S": str(args.interval),
            "APIWATCH_COLLECTION_ENABLED": "false",
            "APIWATCH_PROBE_CONCURRENCY": "200",
            "APIWATCH_ADMIN_KEY": "aw_bench-admin-key-000000000000000000000000",
            "APIWATCH_LOG_LEVEL": "WARNING",
        }
        if base is not None:
            # The console script's own directory comes first on the path, then PYTHONPATH,
            # then the editable install: `apiwatch` is imported from the other tree.
            env["PYTHONPATH"] = str(base)
        subprocess.run([APIWATCH, "db", "upgrade"], env=env, check=True, capture_output=True)
        port = free_port()
        serve = subprocess.Popen(
            [APIWATCH, "serve", "--port", str(port)],
            env=env,
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_port(port)
            time.sleep(args.warmup)
            rows0, cpu0, t0 = stored_rows(database), cpu_seconds(serve.pid), time.monotonic()
            time.sleep(args.seconds)
            rows1, cpu1, t1 = stored_rows(database), cpu_seconds(serve.pid), time.monotonic()
            rss = peak_rss_mb(serve.pid)
        finally:
            serve.terminate()
            try:
                serve.wait(timeout=30)
            except subprocess.TimeoutExpired:
                serve.kill()
    rows = rows1 - rows0
    return {
        "stored_per_s": rows / (t1 - t0),
        "cpu_us": (cpu1 - cpu0) / max(rows, 1) * 1e6,
        "cpu_share": (cpu1 - cpu0) / (t1 - t0),
        "rss_mb": rss,
    }


def blackbox_round(args: argparse.Namespace, config: Path, upstream: str) -> dict:
    port = free_port()
    exporter = subprocess.Popen(
        [
            shutil.which("prometheus-blackbox-exporter") or "prometheus-blackbox-exporter",
            f"--config.file={config}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        url = f"http://127.0.0.1:{port}/probe?module=http_2xx&target={upstream}/ping"
        cpu0 = cpu_seconds(exporter.pid)
        out = subprocess.run(
            ["wrk", "-t1", f"-c{args.blackbox_connections}", f"-d{args.seconds:g}s", url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        cpu1 = cpu_seconds(exporter.pid)
        done = int(re.search(r"(\d+) requests in", out).group(1))
        failed = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        if failed:
            raise RuntimeError(f"blackbox answered {failed.group(1)} probes with an error")
        rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        return {"probes_per_s": rate, "cpu_us": (cpu1 - cpu0) / max(done, 1) * 1e6}
    finally:
        exporter.terminate()
        exporter.wait()


def main(args: argparse.Namespace) -> None:
    for tool in ("wrk", "prometheus-blackbox-exporter"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (Debian packages wrk, prometheus-blackbox-exporter)")
    up_port = free_port()
    upstream_process = subprocess.Popen([sys.executable, "-c", UPSTREAM, str(up_port)])
    upstream = f"http://127.0.0.1:{up_port}"
    base = Path(args.base).resolve() if args.base else None
    if base is not None and not (base / "apiwatch" / "__init__.py").is_file():
        sys.exit(f"--base {base}: no apiwatch package there")
    ours: list[dict] = []
    based: list[dict] = []
    theirs: list[dict] = []
    try:
        wait_port(up_port)
        with tempfile.TemporaryDirectory() as tmp:
            catalogue = Path(tmp) / "providers"
            catalogue.mkdir()
            write_catalogue(catalogue, args.providers)
            config = Path(tmp) / "blackbox.yml"
            config.write_text(BLACKBOX_CONFIG)
            for n in range(args.rounds):
                a = apiwatch_round(args, catalogue, upstream)
                if base is not None:
                    based.append(apiwatch_round(args, catalogue, upstream, base))
                b = blackbox_round(args, config, upstream)
                ours.append(a)
                theirs.append(b)
                if base is not None:
                    c = based[-1]
                    print(
                        f"round {n + 1}: apiwatch@base {c['stored_per_s']:.0f} stored/s, "
                        f"{c['cpu_us']:.0f} µs CPU/probe, {c['cpu_share']:.2f} cores, "
                        f"peak RSS {c['rss_mb']:.0f} MB | ratio this/base "
                        f"{a['cpu_us'] / c['cpu_us']:.2f}",
                        flush=True,
                    )
                print(
                    f"round {n + 1}: apiwatch {a['stored_per_s']:.0f} stored/s, "
                    f"{a['cpu_us']:.0f} µs CPU/probe, {a['cpu_share']:.2f} cores, "
                    f"peak RSS {a['rss_mb']:.0f} MB | blackbox {b['probes_per_s']:.0f} "
                    f"probes/s, {b['cpu_us']:.0f} µs CPU/probe | ratio "
                    f"{a['cpu_us'] / b['cpu_us']:.2f}",
                    flush=True,
                )
    finally:
        upstream_process.terminate()
        upstream_process.wait()
    demand = (args.providers + 10) / args.interval
    med = statistics.median
    print(
        f"\ndemand ≈ {demand:.0f} probes/s ({args.providers} generated + about 10 built-in "
        f"providers every {args.interval:g} s), {args.rounds} interleaved rounds, medians:"
    )
    print(
        f"  apiwatch serve: {med(r['stored_per_s'] for r in ours):.0f} stored/s "
        f"({med(r['stored_per_s'] for r in ours) / demand:.2f} of demand), "
        f"{med(r['cpu_us'] for r in ours):.0f} µs CPU per stored probe, "
        f"{med(r['cpu_share'] for r in ours):.2f} cores, "
        f"peak RSS {max(r['rss_mb'] for r in ours):.0f} MB"
    )
    print(
        f"  blackbox_exporter: {med(r['cpu_us'] for r in theirs):.0f} µs CPU per probe "
        f"({med(r['probes_per_s'] for r in theirs):.0f} probes/s under wrk)"
    )
    if based:
        print(
            f"  apiwatch serve @base: {med(r['stored_per_s'] for r in based):.0f} stored/s, "
            f"{med(r['cpu_us'] for r in based):.0f} µs CPU per stored probe, "
            f"peak RSS {max(r['rss_mb'] for r in based):.0f} MB"
        )
        vs_base = [a["cpu_us"] / c["cpu_us"] for a, c in zip(ours, based, strict=True)]
        print(
            f"  this / base CPU per probe: median {med(vs_base):.2f} (rounds: "
            + ", ".join(f"{r:.2f}" for r in vs_base)
            + ")"
        )
    ratios = [a["cpu_us"] / b["cpu_us"] for a, b in zip(ours, theirs, strict=True)]
    print(
        f"  apiwatch / blackbox CPU per probe: median {med(ratios):.2f} (rounds: "
        + ", ".join(f"{r:.2f}" for r in ratios)
        + ")"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--providers", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--blackbox-connections", type=int, default=10)
    parser.add_argument(
        "--base",
        help="another source tree whose apiwatch also runs in every round, as @base",
    )
    main(parser.parse_args())
