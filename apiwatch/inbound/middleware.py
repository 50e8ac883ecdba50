"""The ASGI middleware that guards an API: checks the `X-API-Key`, counts the key's
minute/hour/day limits, throttles addresses that keep failing authentication, and hands
one `UsageRecord` per request to a non-blocking `record` callable.

Pure ASGI rather than Starlette's BaseHTTPMiddleware, which costs a task and a memory
stream per request; this sits in front of every request, so its hot path avoids
allocations it can do without (error bodies are built once, headers are plain tuples).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any

from apiwatch.inbound.counting import Counting
from apiwatch.inbound.keys import ApiKeyRecord, KeyLookupUnavailable, KeyStore
from apiwatch.inbound.limiter import InboundLimiter, LimitDecision, headers
from apiwatch.inbound.policy import Access, default_policy
from apiwatch.inbound.refusals import (
    ADMIN_REQUIRED,
    FIXED_BODIES,
    INACTIVE,
    INVALID,
    KEYS_DOWN,
    KEYS_DOWN_BODY,
    LIMITER_DOWN,
    MISSING,
    TOO_MANY_FAILURES,
    error_body,
    refusal_reason,
)
from apiwatch.inbound.usage import UsageRecord, resolve_route, routed_template
from apiwatch.inbound.websocket import (
    FORBIDDEN,
    HEADER,
    TOO_MANY,
    UNAUTHENTICATED,
    UNAVAILABLE,
    close_refused,
    take_key,
)

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Logged once, then every this many times: a broken recorder must not flood the log.
LOG_EVERY = 1000

_JSON = (b"content-type", b"application/json")
_new = tuple.__new__


async def _respond(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    response_headers = [_JSON, (b"content-length", b"%d" % len(body))]
    if extra:
        response_headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": response_headers})
    await send({"type": "http.response.body", "body": body})


def _rate_limited(window: str, seconds: int) -> bytes:
    return error_body(f"Rate limit exceeded for {window}. Try again in {seconds} seconds")


def _too_many_failures(seconds: int) -> bytes:
    return error_body(
        f"Too many failed API key attempts from this address. Try again in {seconds} seconds"
    )


class ApiKeyMiddleware:
    """Guard an ASGI app with API keys, per-key limits and usage records.

    - `keys`: where keys are looked up by hash (in memory; see MemoryKeyStore).
    - `limiter`: counts each authenticated request in the key's three windows.
    - `record`: receives one `UsageRecord` per request after the response is sent; it must
      not block (queue it). Its exceptions are logged and swallowed.
    - `policy(method, path)`: "public", "read", "keyed" (a key even with `public_read`)
      or "admin" for a request.
    - `public_read`: read routes need no key (a key sent anyway is still checked and counted).
    - `failed_auth_per_minute`: failed key checks (unknown or inactive key) one client
      address (for IPv6, one /64) may make per minute; beyond that it gets 429 until the
      minute ends, so keys cannot be guessed; a valid key is never refused by this. 0
      turns this off. A missing key is not counted: it guesses nothing.
    - `fail_open`: when the limiter's storage fails (Redis down) and there is no `fallback`,
      let authenticated requests through without limits (True) or refuse them with 503.
    - `fallback`: a process-local limiter that counts while the shared one fails.
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
        fallback: InboundLimiter | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self._keys = keys
        self._record = record
        self._policy = policy
        self._public_read = public_read
        self._fail_open = fail_open
        self._clock = clock
        # The limiter, its fallback and the failed-key throttle; logs their outages.
        self.counting = Counting(
            limiter,
            fallback=fallback,
            failed_auth_per_minute=failed_auth_per_minute,
            fail_open=fail_open,
            clock=clock,
        )
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
        raw_key = bearer = None
        for name, value in scope["headers"]:
            if name == HEADER:
                raw_key = value
            elif name == b"authorization" and value[:7].lower() == b"bearer ":
                bearer = value[7:].strip()  # what Prometheus and most HTTP clients send
        raw_key = raw_key or bearer
        if not raw_key:  # absent or empty
            if access == "read" and self._public_read:
                await self._forward(scope, receive, send, start, address, root_path, None, None)
            else:
                await self._refuse(scope, send, start, address, 401, FIXED_BODIES[MISSING])
            return

        # Hash first, then look up: see MemoryKeyStore on why this does not leak timing.
        try:
            key = await self._keys.lookup(hashlib.sha256(raw_key).hexdigest())
        except KeyLookupUnavailable:  # neither valid nor invalid: not a failed attempt
            retry = [(b"retry-after", b"1")]
            await self._refuse(scope, send, start, address, 503, KEYS_DOWN_BODY, extra=retry)
            return
        if key is None or not key.active:
            # The throttle slows guessing; a valid key guesses nothing, so it is never
            # refused by it (a shared proxy or NAT must not lock its good clients out).
            counting = self.counting
            wait = 0 if address is None else counting.blocked_for(address, int(start))
            if not wait:
                wait = await counting.count_failure(address)
            if wait:
                body = _too_many_failures(wait)
                await self._refuse(
                    scope, send, start, address, 429, body, extra=[(b"retry-after", b"%d" % wait)]
                )
            elif key is None:
                await self._refuse(scope, send, start, address, 401, FIXED_BODIES[INVALID])
            else:
                await self._refuse(
                    scope, send, start, address, 403, FIXED_BODIES[INACTIVE], key=key
                )
            return

        try:
            decision: LimitDecision | None = await self.counting.hit(key)
        except Exception:  # logged, once per period, by `counting`
            decision = None
            self.limiter_failures += 1
            if not self._fail_open:
                await self._refuse(
                    scope, send, start, address, 503, error_body(LIMITER_DOWN), key=key
                )
                return

        extra = None
        if decision is not None:
            extra = headers(decision)
            if not decision.allowed:
                wait = decision.retry_after_s
                extra.append((b"retry-after", b"%d" % wait))
                window = decision.exceeded or "minute"
                body = _rate_limited(window, wait)
                await self._refuse(
                    scope, send, start, address, 429, body, key=key, extra=extra, window=window
                )
                return
        if access == "admin" and key.scope != "admin":
            await self._refuse(
                scope, send, start, address, 403, FIXED_BODIES[ADMIN_REQUIRED], key=key, extra=extra
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
        window: str | None = None,
    ) -> None:
        try:
            await _respond(send, status, body, extra)
        finally:
            reason = refusal_reason(status, body, key, window)
            self._emit(scope, None, key, status, start, address, False, reason)

    def _emit(
        self,
        scope: Scope,
        root_path: str | None,
        key: ApiKeyRecord | None,
        status: int,
        start: float,
        address: str | None,
        authorized: bool,
        refusal: str | None = None,
    ) -> None:
        """Hand one UsageRecord to `record`. `root_path` None: the request never reached
        the app, so its route is matched here. Nothing raised here reaches the server."""
        try:
            if root_path is None:
                route = resolve_route(scope, self.app)
            else:
                route = routed_template(scope, root_path, self.app)
            end = self._clock()
            # tuple.__new__ skips the NamedTuple's Python-level __new__: one per request.
            record = _new(
                UsageRecord,
                (
                    None if key is None else key.id,
                    None if key is None else key.name,
                    route,
                    scope["method"],
                    status,
                    (end - start) * 1000.0,
                    datetime.fromtimestamp(start, UTC),
                    address,
                    authorized,
                    refusal,
                ),
            )
            self._record(record)
        except Exception:
            self.record_failures += 1
            if self.record_failures % LOG_EVERY == 1:
                log.exception("inbound usage record failed (%d times)", self.record_failures)

    # -- WebSocket -------------------------------------------------------------------------

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The same key rules for a WebSocket handshake, the key taken from the header, a
        subprotocol entry or the query (see `inbound.websocket`); a refusal closes with
        4401, 4403, 4429 or 4503 and the reason. Not counted against limits; a refusal is
        recorded like a refused request (status 401, 403, 429 or 503, method GET)."""
        start = self._clock()
        access = self._policy("GET", scope["path"])
        raw_key = take_key(scope)
        client = scope.get("client")
        address: str | None = client[0] if client else None
        refusal: tuple[int, str] | None = None
        key: ApiKeyRecord | None = None
        if access != "public" and not (raw_key is None and access == "read" and self._public_read):
            if raw_key is None:
                refusal = (UNAUTHENTICATED, MISSING)
            else:
                try:
                    key = await self._keys.lookup(hashlib.sha256(raw_key).hexdigest())
                except KeyLookupUnavailable:
                    refusal = (UNAVAILABLE, KEYS_DOWN)
                else:
                    refusal = await self._key_refusal(key, access, address)
                if refusal is None:
                    scope.setdefault("state", {})["api_key"] = key
        if refusal is not None:
            code, detail = refusal
            try:
                await close_refused(scope, receive, send, code, detail)
            finally:
                status = code - 4000  # the close codes mirror the HTTP statuses
                body = KEYS_DOWN_BODY if detail == KEYS_DOWN else FIXED_BODIES.get(detail, b"")
                reason = refusal_reason(status, body, None if status == 429 else key)
                handshake = {**scope, "method": "GET"}
                self._emit(handshake, None, key, status, start, address, False, reason)
            return
        await self.app(scope, receive, send)

    async def _key_refusal(
        self, key: ApiKeyRecord | None, access: Access, address: str | None
    ) -> tuple[int, str] | None:
        """Why a WebSocket handshake with this key is refused, or None."""
        if key is None or not key.active:
            # A valid key is never refused by the failed-key throttle.
            counting = self.counting
            blocked = address is not None and counting.blocked_for(address, int(self._clock()))
            if blocked or await counting.count_failure(address):
                return (TOO_MANY, TOO_MANY_FAILURES)
            return (UNAUTHENTICATED, INVALID) if key is None else (FORBIDDEN, INACTIVE)
        if access == "admin" and key.scope != "admin":
            return (FORBIDDEN, ADMIN_REQUIRED)
        return None
