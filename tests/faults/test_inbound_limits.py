"""The inbound server's limits, against a real uvicorn server run with apiwatch's options
(`api/server.py`) over raw sockets: a head over the cap is refused before it is read whole,
a head that dawdles is cut, connections past the cap are closed, and X-Forwarded-For is
believed only from a trusted proxy."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
import uvicorn

from apiwatch.api.app import create_app
from apiwatch.api.server import server_options
from apiwatch.settings import Settings
from apiwatch.simulator import Simulator
from tests.api.test_api import ADMIN_KEY

Started = tuple[int, uvicorn.Server]


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Callable[..., object]]:
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []
    async with Simulator(port=0) as sim:

        async def run(**overrides: object) -> int:
            settings = Settings(
                _env_file=None,
                database_url=f"sqlite+aiosqlite:///{tmp_path / f'limits{len(servers)}.db'}",
                upstream_override=sim.url,
                admin_key=ADMIN_KEY,
                **overrides,
            )
            options = {**server_options(settings), "port": 0}  # any free port
            config = uvicorn.Config(create_app(settings, start_scheduler=False), **options)
            server = uvicorn.Server(config)
            task = asyncio.create_task(server.serve())
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
            servers.append((server, task))
            return int(server.servers[0].sockets[0].getsockname()[1])

        try:
            yield run
        finally:
            for server, task in servers:
                server.should_exit = True
                await task


async def exchange(port: int, data: bytes, *, wait_s: float = 10.0) -> bytes:
    """Send `data`, return everything the server sends until it closes (or `wait_s`)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        chunks = []
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), deadline - time.monotonic())
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        writer.close()


async def test_a_head_over_16_kib_is_refused_without_reading_it_whole(start) -> None:
    port = await start()
    small = b"GET /api/status HTTP/1.1\r\nHost: x\r\nX-API-Key: " + ADMIN_KEY.encode() + b"\r\n\r\n"
    assert (await exchange(port, small, wait_s=2)).startswith(b"HTTP/1.1 200")
    # A 32 KiB key arriving in one read: refused with 431 and a close.
    big = b"GET /api/status HTTP/1.1\r\nHost: x\r\nX-API-Key: " + b"k" * 32768 + b"\r\n\r\n"
    answer = await exchange(port, big)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    # And a 16 MiB header is never read: the server closes long before it is sent.
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-API-Key: ")
    sent = 0
    with pytest.raises((ConnectionResetError, BrokenPipeError)):
        for _ in range(16 * 1024):
            writer.write(b"k" * 1024)
            await writer.drain()
            sent += 1024
    writer.close()
    assert sent < 8 * 1024 * 1024, sent


async def test_a_head_that_dawdles_is_cut_after_the_timeout(start) -> None:
    port = await start(request_head_timeout_s=1.0)
    began = time.monotonic()
    # Half a head, then nothing: a slowloris client.
    answer = await exchange(port, b"GET /api/status HTTP/1.1\r\nHost: x\r\n", wait_s=10)
    took = time.monotonic() - began
    assert answer == b""
    assert 0.9 <= took < 5, took
    # A keep-alive connection gets a fresh deadline for its next head, not an open end.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    first = await asyncio.wait_for(reader.read(65536), 5)
    assert first.startswith(b"HTTP/1.1 200")
    writer.write(b"GET /healthz HTTP/1.1\r\n")  # the next head never finishes
    began = time.monotonic()
    assert await asyncio.wait_for(reader.read(65536), 10) == b""
    assert time.monotonic() - began < 5
    writer.close()


async def test_connections_past_the_cap_are_closed_at_once(start) -> None:
    port = await start(max_connections=5)
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(5)]
    try:
        await asyncio.sleep(0.2)
        extra = socket.create_connection(("127.0.0.1", port))
        extra.settimeout(5)
        loop = asyncio.get_running_loop()
        try:
            data = await loop.run_in_executor(None, extra.recv, 100)
        except ConnectionResetError:
            data = b""
        assert data == b""  # closed without a word
        extra.close()
    finally:
        for sock in held:
            sock.close()
    await asyncio.sleep(0.2)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        assert (await client.get("/healthz")).status_code == 200


async def test_forwarded_for_is_believed_only_from_trusted_proxies(start) -> None:
    async def rotating_guesses(port: int) -> int:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": "aw_guess"}
        ) as client:
            codes = [
                (
                    await client.get(
                        "/api/providers", headers={"X-Forwarded-For": f"198.51.100.{i}"}
                    )
                ).status_code
                for i in range(12)
            ]
        return codes.count(429)

    # Default: no proxy is trusted, so rotating the header does not escape the throttle.
    assert await rotating_guesses(await start(failed_auth_per_minute=5)) > 0
    # Behind a named proxy (here: loopback), each forwarded address counts on its own.
    trusted = await start(failed_auth_per_minute=5, trusted_proxies=["127.0.0.1"])
    assert await rotating_guesses(trusted) == 0
