"""Transport-level faults: hanging without an answer, resetting the connection, sleeping
before answering, streaming an oversized body, and corrupting a body into non-JSON.

Provider-level faults (rate limits, auth failures, error pages) are each provider's own
shapes and live with the providers; these are the ones that look the same everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct

from aiohttp import web

from apiwatch.simulator.state import SimState

_POLL_S = 0.2
_CHUNK = 64 * 1024


def _disconnected(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def sleep_unless_closing(state: SimState, seconds: float) -> None:
    """Sleep, but wake at once when the simulator shuts down, so stop() never waits on us."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(state.closing.wait(), timeout=max(0.0, seconds))


def abort_connection(request: web.Request) -> web.Response:
    """Drop the TCP connection with a RST and no response bytes.

    SO_LINGER 0 turns the close into a reset, so the client sees "connection reset by peer"
    rather than a tidy end of stream. The returned response is never written: aiohttp finds
    the transport closed and drops it quietly.
    """
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    return web.Response(status=204)


async def hang(request: web.Request, state: SimState) -> web.Response:
    """Accept the request and never answer until the client gives up or we shut down.

    With handler cancellation on (the `Simulator` runner) a disconnect cancels us directly;
    polling the transport covers apps run by other runners, which do not cancel handlers.
    """
    while not _disconnected(request) and not state.closing.is_set():
        await sleep_unless_closing(state, _POLL_S)
    return abort_connection(request)


async def stream_oversized(
    request: web.Request, size: int, headers: dict[str, str]
) -> web.StreamResponse:
    """Send exactly `size` bytes of valid JSON in chunks, never holding the body in memory."""
    head, tail = b'{"padding":"', b'"}'
    response = web.StreamResponse(status=200, headers=headers)
    response.content_type = "application/json"
    response.content_length = size
    await response.prepare(request)
    await response.write(head)
    remaining = size - len(head) - len(tail)
    chunk = b"x" * _CHUNK
    while remaining > 0:
        piece = chunk if remaining >= _CHUNK else chunk[:remaining]
        await response.write(piece)
        remaining -= len(piece)
    await response.write(tail)
    await response.write_eof()
    return response


def corrupt(body: bytes) -> bytes:
    """A truncated body, as a dropped upstream connection leaves it: never valid JSON, since
    the closing bracket of the top-level object or array is cut off."""
    if len(body) < 2:
        return b"{\x00"
    return body[: max(1, len(body) // 2)]
