"""Live feed fan-out: 1,000 WebSocket clients on /ws/live, one of them never reading, while
apiwatch probes every provider every 5 s (the demo's rate) and status changes are forced.

Run: .venv/bin/python bench/live_fanout.py [--clients 1000] [--seconds 40]

apiwatch (`apiwatch serve`) and the simulator run in processes of their own; the clients run
here. Every second a provider is switched between healthy and failing and checked at once,
so its status changes. Each change's delivery delay is the client's receive time minus the
message's `ts` (the change's own time, same clock). Reported: p50/p99/max delay over every
(change, client) pair, apiwatch's CPU over the same span with no clients and with the
clients (ratio), and whether the stuck client was disconnected.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
import websockets
from local_servers import free_port, wait_ready

KEY = "aw_bench-live-fanout-key-000000000000000000"
FLIPPED = ["binance", "coingecko", "tronscan", "alternative_me", "coinmarketcap"]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


async def flip(http: httpx.AsyncClient, sim: str, api: str, seconds: float) -> int:
    """Switch providers between failing and healthy, checking each at once; returns flips."""
    providers = FLIPPED
    down = dict.fromkeys(providers, False)
    flips = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        provider = providers[flips % len(providers)]
        down[provider] = not down[provider]
        body = {"name": "down", "status": 503} if down[provider] else {"name": "healthy"}
        await http.put(f"{sim}/_control/scenarios/{provider}", json=body)
        for _ in range(3):  # three checks: down goes degraded then offline, up comes back
            await http.post(f"{api}/api/schedule/trigger", json={"provider": provider})
        flips += 1
        await asyncio.sleep(1.0)
    return flips


async def reader(
    url: str, delays: list[float], gate: asyncio.Semaphore, connected: list[int]
) -> None:
    async with gate:  # a few handshakes at a time: 1,000 at once time out on 2 cores
        ws = await websockets.connect(
            url, additional_headers={"X-API-Key": KEY}, max_size=None, open_timeout=120
        )
    connected[0] += 1
    async with ws:
        async for raw in ws:
            now = time.time()
            msg = json.loads(raw)
            if msg["type"] == "provider_status_change":
                delays.append(now - datetime.fromisoformat(msg["ts"]).timestamp())


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="apiwatch-fanout-"))
    sim_port, port = free_port(), free_port()
    sim_url, api = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{port}"
    sim = subprocess.Popen(
        [sys.executable, "-m", "apiwatch.cli", "simulate", "--port", str(sim_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'bench.db'}",
        "APIWATCH_UPSTREAM_OVERRIDE": sim_url,
        "APIWATCH_ADMIN_KEY": KEY,
        "APIWATCH_HEALTH_INTERVAL_S": "5",
        "APIWATCH_LOG_LEVEL": "WARNING",
        "APIWATCH_API_LIMIT_PER_MINUTE": "100000",
        "APIWATCH_API_LIMIT_PER_HOUR": "1000000",
        "APIWATCH_API_LIMIT_PER_DAY": "10000000",
    }
    env.pop("REDIS_URL", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "apiwatch.cli", "serve", "--port", str(port)],
        cwd=tmp,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await wait_ready(sim_url, timeout_s=120)  # a loaded machine starts slowly
        async with httpx.AsyncClient(timeout=30, headers={"X-API-Key": KEY}) as http:
            for _ in range(600):
                try:
                    if (await http.get(f"{api}/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            await asyncio.sleep(5)  # the first round of health checks
            before = cpu_seconds(server.pid)
            flips_idle = await flip(http, sim_url, api, args.seconds)
            idle_cpu = cpu_seconds(server.pid) - before

            url = api.replace("http://", "ws://") + "/ws/live"
            stuck = await websockets.connect(url, additional_headers={"X-API-Key": KEY})
            stuck.transport.pause_reading()  # connected, never reads again
            delays: list[float] = []
            gate, connected = asyncio.Semaphore(20), [0]
            tasks = [
                asyncio.create_task(reader(url, delays, gate, connected))
                for _ in range(args.clients - 1)
            ]
            deadline = time.monotonic() + 600
            while connected[0] < args.clients - 1 and time.monotonic() < deadline:
                failed = [t for t in tasks if t.done() and t.exception() is not None]
                if failed:
                    raise RuntimeError(f"{len(failed)} clients failed") from failed[0].exception()
                await asyncio.sleep(0.5)
            delays.clear()  # only changes made while every client listens
            here_before = time.process_time()
            before = cpu_seconds(server.pid)
            flips_busy = await flip(http, sim_url, api, args.seconds)
            busy_cpu = cpu_seconds(server.pid) - before
            here_cpu = time.process_time() - here_before
            await asyncio.sleep(1)
            metrics = (await http.get(f"{api}/metrics")).text
            for task in tasks:
                task.cancel()
            stuck.transport.abort()
        disconnected = next(
            (
                line.split()[-1]
                for line in metrics.splitlines()
                if line.startswith("apiwatch_live_clients_disconnected_stuck_total")
            ),
            "?",
        )
        delays.sort()
        pct = lambda q: delays[min(len(delays) - 1, int(q * len(delays)))] * 1000  # noqa: E731
        print(f"clients: {args.clients} ({args.clients - 1} reading, 1 never reading)")
        print(f"span: {args.seconds:.0f} s each, flips: {flips_idle} idle / {flips_busy} busy")
        print(
            f"status-change deliveries: {len(delays)}  delay p50 {pct(0.5):.1f} ms  "
            f"p99 {pct(0.99):.1f} ms  max {delays[-1] * 1000:.1f} ms"
            if delays
            else "no status change delivered"
        )
        print(
            f"apiwatch CPU: {100 * idle_cpu / args.seconds:.1f}% with no clients, "
            f"{100 * busy_cpu / args.seconds:.1f}% with {args.clients} "
            f"(ratio {busy_cpu / max(idle_cpu, 1e-9):.2f}); the clients' process "
            f"{100 * here_cpu / args.seconds:.1f}%"
        )
        print(f"stuck clients disconnected: {disconnected}")
        if delays:
            print(f"median delay {statistics.median(delays) * 1000:.1f} ms")
    finally:
        for process in (server, sim):
            process.terminate()
            process.wait(15)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=40.0)
    try:
        import uvloop

        uvloop.run(main(parser.parse_args()))
    except ImportError:
        asyncio.run(main(parser.parse_args()))
