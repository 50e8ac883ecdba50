"""The ASGI middleware that guards an API: checks the `X-API-Key`, counts the key's
minute/hour/day limits, throttles addresses that keep failing authentication, and hands
one `UsageRecord` per request to a non-blocking `record` callable.

Pure ASGI rather than Starlette's BaseHTTPMiddleware, which costs a task and a memory
stream per request; this sits in front of every request, so its hot path avoids
allocations it can do without (error bodies are built once, headers are plain tuples).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any

from apiwatch.inbound.keys import ApiKeyRecord, KeyStore
from apiwatch.inbound.limiter import InboundLimiter, LimitDecision, headers
from apiwatch.inbound.policy import Access, default_policy
from apiwatch.inbound.usage import UsageRecord, resolve_route, routed_template

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

HEADER = b"x-api-key"
MISSING = "Missing API key"
INVALID = "Invalid API key"
INACTIVE = "API key is inactive"
ADMIN_REQUIRED = "Admin API key required"
LIMITER_DOWN = "Rate limiter unavailable"
# Logged once, then every this many times: a broken recorder must not flood the log.
LOG_EVERY = 1000


def _body(detail: str) -> bytes:
    return json.dumps({"detail": detail}).encode()


_JSON = (b"content-type", b"application/json")
_FIXED = {detail: _body(detail) for detail in (MISSING, INVALID, INACTIVE, ADMIN_REQUIRED)}


async def _respond(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    response_headers = [_JSON, (b"content-length", b"%d" % len(body))]
    if extra:
        response_headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": response_headers})
    await send({"type": "http.response.body", "body": body})


def _bucket(address: str) -> str:
    """What failed authentication is counted per: the address, or for IPv6 its /64, which
    one host usually holds whole (per address, it could try 2**64 times as often)."""
    if ":" not in address:
        return address
    try:
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    except ValueError:
        return address


def _rate_limited(window: str, seconds: int) -> bytes:
    return _body(f"Rate limit exceeded for {window}. Try again in {seconds} seconds")


def _too_many_failures(seconds: int) -> bytes:
    return _body(
        f"Too many failed API key attempts from this address. Try again in {seconds} seconds"
    )


class ApiKeyMiddleware:
    """Guard an ASGI app with API keys, per-key limits and usage records.

    - `keys`: where keys are looked up by hash (in memory, synchronous).
    - `limiter`: counts each authenticated request in the key's three windows.
    - `record`: receives one `UsageRecord` per request after the response is sent; it must
      not block (queue it). Its exceptions are logged and swallowed.
    - `policy(method, path)`: "public", "read" or "admin" for a request.
    - `public_read`: read routes need no key (a key sent anyway is still checked and counted).
    - `failed_auth_per_minute`: failed key checks (unknown or inactive key) one client
      address (for IPv6, one /64) may make per minute; beyond that it gets 429 until the
      minute ends, even with a valid key, so keys cannot be guessed. 0 turns this off. A
      missing key is not counted: it guesses nothing.
    - `fail_open`: when the limiter's storage fails (Redis down), let authenticated requests
      through without limits (True) or refuse them with 503 (False).
    - `clock`: epoch seconds, for the record's time and latency.

    Behind a reverse proxy the client address is the proxy's unless the server resolves
    forwarded headers (uvicorn `--proxy-headers --forwarded-allow-ips`).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        keys: KeyStore,
        limiter: InboundLimiter,
        record: Callable[[UsageRecord], None],
        policy: Callable[[str, str], Access] = default_policy,
        public_read: bool = False,
        failed_auth_per_minute: int = 30,
        fail_open: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self._keys = keys
        self._limiter = limiter
        self._record = record
        self._policy = policy
        self._public_read = public_read
        self._failed_auth_per_minute = failed_auth_per_minute
        self._fail_open = fail_open
        self._clock = clock
        # Addresses refused for failed authentication, until (epoch second). Kept here so a
        # blocked address costs no storage round trip; another process sharing the Redis
        # counts blocks it at its own next failure.
        self._blocked: dict[str, int] = {}
        self.record_failures = 0
        self.limiter_failures = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    # -- HTTP ------------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = self._clock()
        method: str = scope["method"]
        root_path: str = scope.get("root_path", "")
        path: str = scope["path"]
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :] or "/"
        access = self._policy(method, path)
        client = scope.get("client")
        address: str | None = client[0] if client else None

        if access == "public":
            await self._forward(scope, receive, send, start, address, root_path, None, None)
            return
        raw_key = None
        for name, value in scope["headers"]:
            if name == HEADER:
                raw_key = value
                break
        if not raw_key:  # absent or empty
            if access == "read" and self._public_read:
                await self._forward(scope, receive, send, start, address, root_path, None, None)
            else:
                await self._refuse(scope, send, start, address, 401, _FIXED[MISSING])
            return

        if address is not None and self._blocked:
            wait = self._blocked_for(address, int(start))
            if wait:
                body = _too_many_failures(wait)
                await self._refuse(
                    scope, send, start, address, 429, body, extra=[(b"retry-after", b"%d" % wait)]
                )
                return

        # Hash first, then look up: see MemoryKeyStore on why this does not leak timing.
        key = self._keys.get(hashlib.sha256(raw_key).hexdigest())
        if key is None or not key.active:
            wait = await self._count_failure(address)
            if wait:
                body = _too_many_failures(wait)
                await self._refuse(
                    scope, send, start, address, 429, body, extra=[(b"retry-after", b"%d" % wait)]
                )
            elif key is None:
                await self._refuse(scope, send, start, address, 401, _FIXED[INVALID])
            else:
                await self._refuse(scope, send, start, address, 403, _FIXED[INACTIVE], key=key)
            return

        try:
            decision: LimitDecision | None = await self._limiter.hit(
                key.id, minute=key.minute_limit, hour=key.hour_limit, day=key.day_limit
            )
        except Exception as error:
            decision = None
            self.limiter_failures += 1
            if self.limiter_failures % LOG_EVERY == 1:
                log.error(
                    "inbound limiter storage failed (%d times); %s: %s",
                    self.limiter_failures,
                    "letting requests through" if self._fail_open else "refusing requests",
                    type(error).__name__,
                )
            if not self._fail_open:
                await self._refuse(scope, send, start, address, 503, _body(LIMITER_DOWN), key=key)
                return

        extra = None
        if decision is not None:
            extra = headers(decision)
            if not decision.allowed:
                wait = decision.retry_after_s
                extra.append((b"retry-after", b"%d" % wait))
                body = _rate_limited(decision.exceeded or "minute", wait)
                await self._refuse(scope, send, start, address, 429, body, key=key, extra=extra)
                return
        if access == "admin" and key.scope != "admin":
            await self._refuse(
                scope, send, start, address, 403, _FIXED[ADMIN_REQUIRED], key=key, extra=extra
            )
            return

        state = scope.get("state")
        if state is None:
            scope["state"] = state = {}
        state["api_key"] = key
        await self._forward(scope, receive, send, start, address, root_path, key, extra)

    async def _forward(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        start: float,
        address: str | None,
        root_path: str,
        key: ApiKeyRecord | None,
        extra: list[tuple[bytes, bytes]] | None,
    ) -> None:
        status = 500  # what the server sends when the app fails before it starts a response

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if extra:
                    message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self._emit(scope, root_path, key, status, start, address, True)

    async def _refuse(
        self,
        scope: Scope,
        send: Send,
        start: float,
        address: str | None,
        status: int,
        body: bytes,
        *,
        key: ApiKeyRecord | None = None,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        try:
            await _respond(send, status, body, extra)
        finally:
            self._emit(scope, None, key, status, start, address, False)

    def _emit(
        self,
        scope: Scope,
        root_path: str | None,
        key: ApiKeyRecord | None,
        status: int,
        start: float,
        address: str | None,
        authorized: bool,
    ) -> None:
        """Hand one UsageRecord to `record`. `root_path` None: the request never reached
        the app, so its route is matched here. Nothing raised here reaches the server."""
        try:
            if root_path is None:
                route = resolve_route(scope, self.app)
            else:
                route = routed_template(scope, root_path, self.app)
            end = self._clock()
            self._record(
                UsageRecord(
                    None if key is None else key.id,
                    None if key is None else key.name,
                    route,
                    scope["method"],
                    status,
                    (end - start) * 1000.0,
                    datetime.fromtimestamp(start, UTC),
                    address,
                    authorized,
                )
            )
        except Exception:
            self.record_failures += 1
            if self.record_failures % LOG_EVERY == 1:
                log.exception("inbound usage record failed (%d times)", self.record_failures)

    # -- failed authentication -------------------------------------------------------------

    def _blocked_for(self, address: str, now: int) -> int:
        bucket = _bucket(address)
        until = self._blocked.get(bucket)
        if until is None:
            return 0
        if now < until:
            return until - now
        del self._blocked[bucket]
        return 0

    async def _count_failure(self, address: str | None) -> int:
        """Count a failed key check; the seconds to wait when the address is now blocked."""
        if address is None or self._failed_auth_per_minute <= 0:
            return 0
        try:
            wait = await self._limiter.count_failure(
                _bucket(address), per_minute=self._failed_auth_per_minute
            )
        except Exception as error:
            log.warning("inbound failed-auth count failed: %s", type(error).__name__)
            return 0
        if wait is None:
            return 0
        now = int(self._clock())
        if len(self._blocked) > 10_000:  # bounded: forget blocks that have run out
            self._blocked = {a: t for a, t in self._blocked.items() if t > now}
        self._blocked[_bucket(address)] = now + wait
        return wait

    # -- WebSocket -------------------------------------------------------------------------

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The same key rules for a WebSocket handshake; a refusal closes it with 1008
        (policy violation) and the reason. Not counted against limits."""
        path: str = scope["path"]
        access = self._policy("GET", path)
        raw_key = next((value for name, value in scope["headers"] if name == HEADER), None) or None
        client = scope.get("client")
        address: str | None = client[0] if client else None
        reason = None
        if access != "public" and not (raw_key is None and access == "read" and self._public_read):
            if raw_key is None:
                reason = MISSING
            elif address is not None and self._blocked_for(address, int(self._clock())):
                reason = "Too many failed API key attempts from this address"
            else:
                key = self._keys.get(hashlib.sha256(raw_key).hexdigest())
                if key is None or not key.active:
                    reason = INVALID if key is None else INACTIVE
                    if await self._count_failure(address):
                        reason = "Too many failed API key attempts from this address"
                elif access == "admin" and key.scope != "admin":
                    reason = ADMIN_REQUIRED
                else:
                    scope.setdefault("state", {})["api_key"] = key
        if reason is not None:
            await send({"type": "websocket.close", "code": 1008, "reason": reason})
            return
        await self.app(scope, receive, send)
