"""Shared by the benchmarks: a free port on 127.0.0.1, and waiting for a simulator started in
its own process to answer. (Scripts run as `python bench/NAME.py`, so this imports as
`local_servers`.)"""

from __future__ import annotations

import asyncio
import socket

import aiohttp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_ready(url: str) -> None:
    """Until the simulator at `url` answers its health endpoint (10 s at most)."""
    async with aiohttp.ClientSession() as http:
        for _ in range(100):
            try:
                async with http.get(f"{url}/_control/health") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
    raise RuntimeError("simulator did not start")
