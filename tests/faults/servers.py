"""Servers the fault tests own and may kill: a redis-server on a free port (never the shared
one on 6379) and a TCP proxy in front of the shared PostgreSQL that a test can cut."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _unavailable(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: the fault tests must run)")
    pytest.skip(message)


class OwnRedis:
    """A redis-server of the test's own, on a free port, with no persistence."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            _unavailable("redis-server is not installed")
        self.binary = str(binary)
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock,
            ):
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.05)
        raise RuntimeError("own redis-server did not start")

    def kill(self) -> None:
        """kill -9: no goodbye to clients."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait()


class CuttableProxy:
    """A TCP proxy on a free port to `target`; `cut()` closes every connection and refuses
    new ones (a database outage as apiwatch sees it), `restore()` lets them through again.
    `pause()` holds every byte in both directions without closing anything (a hung server:
    connections stay open and nothing answers), `resume()` delivers them."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self.open = True
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    await self._flowing.wait()
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(OSError):
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    def cut(self) -> None:
        self.open = False
        for writer in list(self._writers):
            transport = writer.transport
            transport.abort()  # a reset, as a crashed server or a dead link gives
        self._writers.clear()

    def restore(self) -> None:
        self.open = True

    def pause(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    async def stop(self) -> None:
        self.resume()
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


ADMIN = "aw_fault-tests-admin-key-0000000000000000000"


class ServeProcess:
    """`apiwatch serve` as a user runs it, in its own process, that a test may kill -9."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        base = {k: v for k, v in os.environ.items() if not k.startswith(("APIWATCH_", "REDIS"))}
        self.env = {
            **base,
            "APIWATCH_ADMIN_KEY": ADMIN,
            "APIWATCH_SCHEDULER_ENABLED": "false",
            "APIWATCH_LOG_LEVEL": "WARNING",
            # These tests poll faster than a key's default 100 a minute; the limiter has
            # its own tests, and failed-auth throttling stays at its default here.
            "APIWATCH_API_LIMIT_PER_MINUTE": "100000",
            "APIWATCH_API_LIMIT_PER_HOUR": "1000000",
            "APIWATCH_API_LIMIT_PER_DAY": "10000000",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        import httpx

        self.process = subprocess.Popen(
            [sys.executable, "-m", "apiwatch.cli", "serve", "--port", str(self.port)],
            cwd=self.workdir,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=open(self.workdir / "serve.log", "ab"),  # noqa: SIM115
        )
        async with httpx.AsyncClient() as client:
            for _ in range(600):
                if self.process.poll() is not None:
                    log = (self.workdir / "serve.log").read_text()[-2000:]
                    raise RuntimeError(f"apiwatch serve exited: {log}")
                try:
                    if (await client.get(self.url + "/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError("apiwatch serve did not start")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
