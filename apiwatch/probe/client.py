"""The shared HTTP client for probes: one aiohttp session, and reading bodies with a cap.

One session is shared by every probe so connections (and TLS handshakes) are reused; the
body cap bounds what any upstream can make us hold in memory.

Each connection's protocol is aiohttp's own with two additions for upstreams that break
HTTP after their status line (a 200 with broken chunking, a 503 with a malformed header, a
502 with both Content-Length and Transfer-Encoding):
- it keeps the status code of the response being read, because aiohttp's parser raises
  before it hands over a response object and its error does not carry the status; the
  error is marked with it (`upstream_status`), so the probe stores what the upstream sent;
- when the parser gives up on a later packet of a body already being read, it fails that
  body with the parser's error; aiohttp (3.14) leaves the reader waiting for the timeout.
"""

from __future__ import annotations

import functools
import re
import ssl
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler
from aiohttp.http_exceptions import HttpProcessingError

USER_AGENT = "apiwatch/0.1 (+https://github.com/apiwatch)"

# "HTTP/1.1 503 Service Unavailable\r\n": the code, once the bytes after it show it whole.
_STATUS_LINE = re.compile(rb"HTTP/\d\.\d (\d{3})[ \r\n]")
_STATUS_LINE_BYTES = 16


class StatusKeepingHandler(ResponseHandler):
    """aiohttp's response protocol, remembering the status line of the current response."""

    _head: bytes | None = None
    # The status code the upstream's current response began with; None until it is read.
    upstream_status: int | None = None
    # The connection's TLS object (ssl.SSLObject), kept past the transport's closing so the
    # probe can read the certificate after aiohttp has released the connection.
    ssl_object: Any = None

    def connection_made(self, transport: Any) -> None:
        self.ssl_object = transport.get_extra_info("ssl_object")
        super().connection_made(transport)

    def set_response_params(self, **params: Any) -> None:
        # Called for every request on the connection, before its response is read.
        self._head = b""
        self.upstream_status = None
        super().set_response_params(**params)

    def data_received(self, data: bytes) -> None:
        head = self._head
        if head is not None:
            head += data[: _STATUS_LINE_BYTES - len(head)]
            match = _STATUS_LINE.match(head)
            if match is not None or len(head) >= _STATUS_LINE_BYTES:
                self._head = None
                code = int(match[1]) if match is not None else None
                # An interim 1xx is not the answer; rather no status than a wrong one.
                self.upstream_status = code if code is not None and code >= 200 else None
            else:
                self._head = head
        super().data_received(data)

    def set_exception(self, exc: BaseException, *args: Any) -> None:
        if isinstance(exc, HttpProcessingError):  # the parser refused what came
            cause = args[0] if args and isinstance(args[0], HttpProcessingError) else exc
            if self.upstream_status is not None:
                exc.upstream_status = cause.upstream_status = self.upstream_status  # type: ignore[attr-defined]
            payload = self._payload
            if payload is not None and not payload.is_eof() and payload.exception() is None:
                payload.set_exception(cause)
        super().set_exception(exc, *args)


class _Connector(aiohttp.TCPConnector):
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        # The factory of each connection's protocol (an attribute aiohttp has had since 3.0).
        self._factory = functools.partial(StatusKeepingHandler, loop=self._loop)


def connection_ssl_object(response: aiohttp.ClientResponse) -> Any:
    """The TLS object of the connection `response` came over, or None (plain HTTP).

    aiohttp releases the connection as soon as a short body has arrived, so the protocol is
    reached through the response's own reference to it (`_protocol`, which aiohttp has kept
    since 3.0) when `response.connection` is already gone.
    """
    connection = response.connection
    protocol = connection.protocol if connection is not None else None
    if protocol is None:
        protocol = getattr(response, "_protocol", None)
    return getattr(protocol, "ssl_object", None)


def upstream_status(exc: BaseException) -> int | None:
    """The status code an upstream sent before the protocol error `exc` (or its causes)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        code = getattr(current, "upstream_status", None)
        if isinstance(code, int):
            return code
        current = current.__cause__ or current.__context__
    return None


def create_session(
    *, connection_limit: int = 100, ca_file: Path | None = None
) -> aiohttp.ClientSession:
    """The probes' session; `ca_file` (PEM) adds CAs trusted besides the system's."""
    tls: ssl.SSLContext | bool = True  # aiohttp's default verified context
    if ca_file is not None:
        tls = ssl.create_default_context()
        tls.load_verify_locations(cafile=str(ca_file))
    connector = _Connector(limit=connection_limit, ttl_dns_cache=300, ssl=tls)
    return aiohttp.ClientSession(
        connector=connector,
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        # Never pick up HTTP(S)_PROXY from the environment: probes go where the catalogue says.
        trust_env=False,
        # Cookies from one provider's response must not ride along on later probes.
        cookie_jar=aiohttp.DummyCookieJar(),
    )


async def read_bounded(response: aiohttp.ClientResponse, max_bytes: int) -> tuple[bytes, bool]:
    """Up to `max_bytes` of the (decompressed) body; True when more was on its way."""
    declared = response.content_length
    if declared is not None and declared > max_bytes:
        return b"", True
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(65536):
        size += len(chunk)
        if size > max_bytes:
            return b"", True
        chunks.append(chunk)
    return b"".join(chunks), False
