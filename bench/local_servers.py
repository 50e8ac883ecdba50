"""Shared by the benchmarks: a free port on 127.0.0.1, waiting for a simulator (or any server)
started in its own process to answer, how to launch Debian's chromium, a catalogue of
generated providers, and a process's CPU seconds. (Scripts run as `python bench/NAME.py`,
so this imports as `local_servers`.)"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from pathlib import Path

import aiohttp
import httpx

# Debian's chromium, as the browser benchmarks drive it (Playwright's own download is not used).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_ready(url: str, *, timeout_s: float = 10.0) -> None:
    """Until the simulator at `url` answers its health endpoint (`timeout_s` at most)."""
    async with aiohttp.ClientSession() as http:
        for _ in range(int(timeout_s * 10)):
            try:
                async with http.get(f"{url}/_control/health") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
    raise RuntimeError("simulator did not start")


def wait_http(url: str, timeout: float = 60) -> None:
    """Until `url` answers 200 (a server started in its own process), synchronously."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def write_catalogue(directory: Path, n: int) -> None:
    """`n` generated providers (`gen00000` …), each a health check of `/ping` expecting 200."""
    for i in range(n):
        (directory / f"gen{i:05d}.yaml").write_text(
            f"id: gen{i:05d}\nname: Generated {i}\ncategory: market_data\n"
            "base_url: https://gen.invalid\nauth: {in: none}\n"
            "health:\n  path: /ping\n  expect:\n    - {status: 200}\n"
        )


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds a process has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
