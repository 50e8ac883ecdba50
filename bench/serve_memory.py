"""Memory of `apiwatch serve` over time with many providers, side by side with other code.

Run: .venv/bin/python bench/serve_memory.py [--providers 10000] [--interval 10]
     [--seconds 480] [--every 60] [--base DIR] [--set NAME=VALUE ...]

`apiwatch serve` (role all, SQLite in a fresh file, collection off) with N generated
providers at a health interval of `--interval` seconds, against a local upstream (the raw
ASGI app of `serve_cpu.py`, answering `{}`). Its `/metrics` is scraped every 15 s, as a
Prometheus would. Every `--every` seconds the resident set (VmRSS), its peak (VmHWM) and
the part of it in glibc's thread arenas (the database threads' malloc memory) are
printed; at the end, the rows stored a second and the largest kinds of mapping (heap,
anonymous, libraries) from /proc/PID/smaps.

With `--base DIR` (another source tree, e.g. an export of main) a second `apiwatch serve`
with `apiwatch` imported from there runs at the same time, on its own upstream and
database: both see the same machine for the same minutes, so their figures compare where
figures of separate runs (40 % apart here) do not. The per-provider windows fill for
several minutes (50 latencies at 10 s is eight), so memory is read over minutes, not
seconds.

`--set NAME=VALUE` (repeatable) sets an environment variable of this tree's server only
(e.g. `--set APIWATCH_SLO_BURN_INTERVAL_S=86400`): with `--base .` it compares the same code
with and without a job or a setting.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from local_servers import free_port, write_catalogue
from serve_cpu import UPSTREAM, stored_rows, wait_port

APIWATCH = str(Path(sys.executable).with_name("apiwatch"))
ADMIN = "aw_bench-admin-key-000000000000000000000000"


class Served:
    """One `apiwatch serve` with its own upstream and database."""

    def __init__(self, label: str, tmp: Path, catalogue: Path, args: argparse.Namespace) -> None:
        self.label = label
        self.database = tmp / f"{label}.db"
        self.up_port, self.port = free_port(), free_port()
        self.upstream = subprocess.Popen([sys.executable, "-c", UPSTREAM, str(self.up_port)])
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("APIWATCH_", "REDIS"))},
            "DATABASE_URL": f"sqlite+aiosqlite:///{self.database}",
            "APIWATCH_CATALOGUE_DIR": str(catalogue),
            "APIWATCH_UPSTREAM_OVERRIDE": f"http://127.0.0.1:{self.up_port}",
            "APIWATCH_HEALTH_INTERVAL_S": str(args.interval),
            "APIWATCH_COLLECTION_ENABLED": "false",
            "APIWATCH_PROBE_CONCURRENCY": "200",
            "APIWATCH_ADMIN_KEY": ADMIN,
            "APIWATCH_LOG_LEVEL": "WARNING",
        }
        if label == "base":
            env["PYTHONPATH"] = str(Path(args.base).resolve())
        else:
            env.update(name_value.split("=", 1) for name_value in args.set)
        wait_port(self.up_port)
        subprocess.run([APIWATCH, "db", "upgrade"], env=env, check=True, capture_output=True)
        self.log = (tmp / f"{label}.log").open("w")
        self.serve = subprocess.Popen(
            [APIWATCH, "serve", "--port", str(self.port)],
            env=env,
            cwd=tmp,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def status(self) -> dict[str, int]:
        fields = Path(f"/proc/{self.serve.pid}/status").read_text().splitlines()
        values = dict(line.split(":", 1) for line in fields)
        return {k: int(values[k].split()[0]) // 1024 for k in ("VmRSS", "VmHWM")}

    def scrape(self) -> None:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/metrics", headers={"X-API-Key": ADMIN}
        )
        try:
            urllib.request.urlopen(request, timeout=30).read()
        except OSError as error:
            print(f"  {self.label}: scrape failed ({error})", flush=True)

    def mappings(self) -> list[tuple[str, int]]:
        """MB resident per kind of mapping, largest first."""
        sizes: collections.Counter[str] = collections.Counter()
        kind = "[anon]"
        for line in Path(f"/proc/{self.serve.pid}/smaps").read_text().splitlines():
            parts = line.split()
            if parts and "-" in parts[0] and not parts[0].endswith(":"):
                kind = parts[5].rsplit("/", 1)[-1] if len(parts) > 5 else "[anon]"
            elif parts and parts[0] == "Rss:":
                sizes[kind] += int(parts[1])
        return [(name, kb // 1024) for name, kb in sizes.most_common(5)]

    def thread_arenas(self) -> int:
        """MB resident in glibc's thread arenas: each a 64 MiB anonymous reservation whose
        used part is readable and writable and the rest has no access."""
        regions: list[tuple[int, int, str, bool, int]] = []
        for line in Path(f"/proc/{self.serve.pid}/smaps").read_text().splitlines():
            parts = line.split()
            if parts and "-" in parts[0] and not parts[0].endswith(":"):
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                regions.append((lo, hi, parts[1], len(parts) > 5, 0))
            elif parts and parts[0] == "Rss:" and regions:
                regions[-1] = (*regions[-1][:4], int(parts[1]))
        kb = sum(
            used[4]
            for used, rest in itertools.pairwise(regions)
            if used[2].startswith("rw")
            and rest[2] == "---p"
            and not used[3]
            and not rest[3]
            and used[1] == rest[0]
            and rest[1] - used[0] == 64 << 20
        )
        return kb // 1024

    def stop(self) -> None:
        self.serve.terminate()
        try:
            self.serve.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.serve.kill()
        self.upstream.terminate()
        self.upstream.wait()
        self.log.close()


def main(args: argparse.Namespace) -> None:
    if args.base and not (Path(args.base) / "apiwatch" / "__init__.py").is_file():
        sys.exit(f"--base {args.base}: no apiwatch package there")
    for name_value in args.set:
        if "=" not in name_value:
            sys.exit(f"--set {name_value}: expected NAME=VALUE")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        catalogue = tmp / "providers"
        catalogue.mkdir()
        write_catalogue(catalogue, args.providers)
        runs = [Served("this", tmp, catalogue, args)]
        if args.base:
            runs.append(Served("base", tmp, catalogue, args))
        try:
            for run in runs:
                wait_port(run.port, timeout=600)  # loading 10,000 files takes a while
            start = time.monotonic()
            rows0 = {run.label: stored_rows(run.database) for run in runs}
            next_print, next_scrape = 0.0, 0.0
            print(
                f"{args.providers} providers every {args.interval:g} s; "
                "RSS (peak; in thread arenas) in MB"
            )
            while (elapsed := time.monotonic() - start) < args.seconds:
                if elapsed >= next_scrape:
                    for run in runs:
                        run.scrape()
                    next_scrape += 15
                if elapsed >= next_print:
                    line = " | ".join(
                        f"{run.label} {s['VmRSS']} ({s['VmHWM']}; arenas {run.thread_arenas()})"
                        for run in runs
                        for s in [run.status()]
                    )
                    print(f"{elapsed:5.0f} s: {line}", flush=True)
                    next_print += args.every
                time.sleep(0.5)
            took = time.monotonic() - start
            for run in runs:
                stored = (stored_rows(run.database) - rows0[run.label]) / took
                final = run.status()
                print(
                    f"{run.label}: RSS {final['VmRSS']} MB, peak {final['VmHWM']} MB, "
                    f"{stored:.0f} rows stored a second; resident by mapping: "
                    + ", ".join(f"{name} {mb}" for name, mb in run.mappings())
                )
        finally:
            for run in runs:
                run.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", type=int, default=10000)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=480.0)
    parser.add_argument("--every", type=float, default=60.0)
    parser.add_argument("--base", help="another source tree to run beside this one")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable for this tree's server only",
    )
    main(parser.parse_args())
