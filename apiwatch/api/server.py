"""How apiwatch's HTTP server is run: uvicorn with limits a client without a key cannot
exhaust.

- Request heads are capped at `max_request_head_bytes` (16 KiB), answered 431 and closed.
  uvicorn's h11 option (`h11_max_incomplete_event_size`) only bounds a head still
  incomplete after a read: one that arrives whole in one read (up to 256 KiB) is parsed
  whatever its size. `GuardedH11Protocol` counts the head's bytes as they arrive. uvicorn's
  httptools parser has no option at all, so h11 is used.
- A head must arrive within `request_head_timeout_s` (10 s) of the connection opening or of
  the previous response: uvicorn has no such timeout (its keep-alive timer stops at the
  first byte), so `GuardedH11Protocol` adds one and closes a connection that dawdles.
- At most `max_connections` connections are open: past it a new connection is closed at
  once, and uvicorn's `limit_concurrency` answers 503 to requests beyond it.
- `X-Forwarded-For` is believed only from `trusted_proxies` (none by default; uvicorn's
  default would trust 127.0.0.1, letting any local client pick its address).
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from apiwatch.settings import Settings


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request head and a connection cap;
    `guarded_protocol` sets the two class attributes from the settings."""

    head_timeout_s: float = 10.0
    max_connections: int = 1000
    max_head_bytes: int = 16 * 1024

    _head_timer: asyncio.TimerHandle | None = None
    _head_bytes = 0

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:
            end = data.find(b"\r\n\r\n")
            self._head_bytes += len(data) if end < 0 else end + 4
            if self._head_bytes > self.max_head_bytes:
                self._refuse_head()
                return
        super().data_received(data)

    def _refuse_head(self) -> None:
        body = b'{"detail": "request head over %d bytes"}' % self.max_head_bytes
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json"
            b"\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
        )
        self.transport.close()
        self._cancel_head_timer()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            self.connections.discard(self)
            transport.abort()
            return
        self._arm_head_timer()

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        # Still waiting for (the rest of) a head: the client is too slow, or holding us.
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:
            self._cancel_head_timer()  # the head is in: the request is the app's now

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._head_bytes = 0
        if not self.transport.is_closing():
            self._arm_head_timer()  # the next head on this keep-alive connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)


def guarded_protocol(settings: Settings) -> type[GuardedH11Protocol]:
    return type(
        "GuardedH11Protocol",
        (GuardedH11Protocol,),
        {
            "head_timeout_s": settings.request_head_timeout_s,
            "max_connections": settings.max_connections,
            "max_head_bytes": settings.max_request_head_bytes,
        },
    )


def server_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.run` / `uvicorn.Config` (besides the app)."""
    trusted = [proxy.strip() for proxy in settings.trusted_proxies if proxy.strip()]
    return {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "http": guarded_protocol(settings),
        "h11_max_incomplete_event_size": settings.max_request_head_bytes,
        "limit_concurrency": settings.max_connections,
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": ",".join(trusted) if trusted else "",
        # Feed messages are small JSON: compressing each for each client costs far more
        # CPU than it saves bandwidth (bench/live_fanout.py).
        "ws_per_message_deflate": False,
    }
