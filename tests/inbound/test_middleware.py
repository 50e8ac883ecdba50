"""ApiKeyMiddleware mounted in a small FastAPI app of its own (not apiwatch's), served by
uvicorn on 127.0.0.1 and called over HTTP: exact errors, rate-limit headers, limits per
key, usage records with route templates, failed-auth throttling, public read."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC
from typing import Any

import httpx
import pytest
import websockets
from fastapi import FastAPI, WebSocket

from apiwatch.inbound import (
    UNMATCHED,
    ApiKeyMiddleware,
    ApiKeyRecord,
    InboundLimiter,
    MemoryKeyStore,
    UsageRecord,
    hash_key,
)
from tests.inbound.apps import ADMIN_KEY, READ_KEY, Guarded, guard, products_app, serving
from tests.inbound.clock import NOON, FakeClock

RATE_HEADERS = [
    f"x-ratelimit-{window}-{part}"
    for window in ("minute", "hour", "day")
    for part in ("limit", "remaining", "reset")
]
INACTIVE_KEY = "aw_inbound-tests-inactive-key-00000000000000"
TIGHT_KEY = "aw_inbound-tests-tight-key-00000000000000000"


def keys() -> dict[str, ApiKeyRecord]:
    return {
        hash_key(READ_KEY): ApiKeyRecord(1, "reader", "read", True, READ_KEY[:8]),
        hash_key(ADMIN_KEY): ApiKeyRecord(2, "admin", "admin", True, ADMIN_KEY[:8]),
        hash_key(INACTIVE_KEY): ApiKeyRecord(3, "retired", "read", False, INACTIVE_KEY[:8]),
        hash_key(TIGHT_KEY): ApiKeyRecord(
            4, "tight", "read", True, TIGHT_KEY[:8], minute_limit=2, hour_limit=50, day_limit=60
        ),
    }


class Served:
    def __init__(self, guarded: Guarded, url: str) -> None:
        self.guarded = guarded
        self.url = url

    @property
    def records(self) -> list[UsageRecord]:
        return self.guarded.records

    def client(self, key: str | None = None, **options: Any) -> httpx.AsyncClient:
        headers = {"X-API-Key": key} if key is not None else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=10, **options)


ServeFactory = Callable[..., Any]


@pytest.fixture
async def serve() -> AsyncIterator[ServeFactory]:
    """Serve the products app behind the middleware with the given options; the limiter's
    clock stands at 12:00:10 UTC, so windows never roll over during a test."""
    stack: list[Any] = []

    async def start(limiter: InboundLimiter | None = None, **options: Any) -> Served:
        limiter = limiter or InboundLimiter(clock=FakeClock(NOON))
        guarded = guard(products_app(), limiter=limiter, keys=keys(), **options)
        context = serving(guarded.app)
        url = await context.__aenter__()
        stack.append((context, limiter))
        return Served(guarded, url)

    try:
        yield start
    finally:
        for context, limiter in reversed(stack):
            await context.__aexit__(None, None, None)
            await limiter.close()


@pytest.fixture
async def api(serve: ServeFactory) -> Served:
    return await serve()  # type: ignore[no-any-return]


# -- errors ----------------------------------------------------------------------------------


async def test_missing_key_gets_401_missing_api_key(api: Served) -> None:
    async with api.client() as anonymous:
        response = await anonymous.get("/api/products")
    assert response.status_code == 401
    assert response.json() == {"detail": "Missing API key"}
    assert response.headers["content-type"] == "application/json"
    assert not any(name in response.headers for name in RATE_HEADERS)


async def test_an_empty_key_header_counts_as_missing(api: Served) -> None:
    async with api.client("") as empty:
        response = await empty.get("/api/products")
    assert response.status_code == 401
    assert response.json() == {"detail": "Missing API key"}


async def test_unknown_key_gets_401_invalid_api_key(api: Served) -> None:
    async with api.client("aw_not-a-key") as stranger:
        response = await stranger.get("/api/products")
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid API key"}


async def test_deactivated_key_gets_403_api_key_is_inactive(api: Served) -> None:
    async with api.client(INACTIVE_KEY) as retired:
        response = await retired.get("/api/products")
    assert response.status_code == 403
    assert response.json() == {"detail": "API key is inactive"}


async def test_read_key_on_an_admin_route_gets_403_admin_required(api: Served) -> None:
    async with api.client(READ_KEY) as reader:
        refused = await reader.post("/api/products")
    async with api.client(ADMIN_KEY) as admin:
        allowed = await admin.post("/api/products")
    assert refused.status_code == 403
    assert refused.json() == {"detail": "Admin API key required"}
    assert all(name in refused.headers for name in RATE_HEADERS)  # it is authenticated
    assert allowed.status_code == 200 and allowed.json() == {"created": True}


async def test_over_the_minute_limit_gets_429_with_retry_after(api: Served) -> None:
    async with api.client(TIGHT_KEY) as tight:
        statuses = [(await tight.get("/api/products")).status_code for _ in range(2)]
        refused = await tight.get("/api/products")
    assert statuses == [200, 200]
    assert refused.status_code == 429
    # The limiter's clock stands at 12:00:10: the minute ends in 50 s.
    assert refused.headers["Retry-After"] == "50"
    assert refused.json() == {"detail": "Rate limit exceeded for minute. Try again in 50 seconds"}
    assert refused.headers["X-RateLimit-Minute-Remaining"] == "0"
    assert refused.headers["X-RateLimit-Hour-Remaining"] == "48"


@pytest.mark.parametrize(
    ("limits", "window", "seconds"),
    [({"hour_limit": 1}, "hour", 3590), ({"day_limit": 1}, "day", 43190)],
)
async def test_over_the_hour_or_day_limit_names_that_window(
    serve: ServeFactory, limits: dict[str, int], window: str, seconds: int
) -> None:
    api = await serve()
    api.guarded.store.add(
        hash_key("aw_windowed"), ApiKeyRecord(9, "w", "read", True, "aw_windo", **limits)
    )
    async with api.client("aw_windowed") as client:
        assert (await client.get("/api/products")).status_code == 200
        refused = await client.get("/api/products")
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == str(seconds)
    assert refused.json() == {
        "detail": f"Rate limit exceeded for {window}. Try again in {seconds} seconds"
    }


# -- headers ---------------------------------------------------------------------------------


async def test_every_authenticated_response_carries_the_nine_headers_counting_down(
    api: Served,
) -> None:
    async with api.client(READ_KEY) as reader:
        responses = [
            await reader.get("/api/products/1"),
            await reader.get("/api/nowhere"),  # 404 from the app
            await reader.get("/api/boom"),  # 418 raised by the route
        ]
    assert [r.status_code for r in responses] == [200, 404, 418]
    for response in responses:
        assert all(name in response.headers for name in RATE_HEADERS), response.headers
    assert [r.headers["X-RateLimit-Minute-Remaining"] for r in responses] == ["99", "98", "97"]
    assert [r.headers["X-RateLimit-Day-Remaining"] for r in responses] == ["9999", "9998", "9997"]
    first = responses[0].headers
    assert (first["X-RateLimit-Minute-Limit"], first["X-RateLimit-Minute-Reset"]) == ("100", "50")
    assert (first["X-RateLimit-Hour-Limit"], first["X-RateLimit-Hour-Reset"]) == ("1000", "3590")
    assert (first["X-RateLimit-Day-Limit"], first["X-RateLimit-Day-Reset"]) == ("10000", "43190")


async def test_per_key_limits_show_in_that_keys_headers(api: Served) -> None:
    async with api.client(TIGHT_KEY) as tight:
        response = await tight.get("/api/products")
    assert response.headers["X-RateLimit-Minute-Limit"] == "2"
    assert response.headers["X-RateLimit-Hour-Limit"] == "50"
    assert response.headers["X-RateLimit-Day-Limit"] == "60"
    assert response.headers["X-RateLimit-Minute-Remaining"] == "1"


async def test_the_route_reads_the_key_record_from_request_state(api: Served) -> None:
    async with api.client(READ_KEY) as reader:
        response = await reader.get("/api/products/5")
    assert response.json() == {"id": 5, "key": "reader"}


# -- usage records ---------------------------------------------------------------------------


async def test_usage_records_carry_the_route_template_not_the_raw_path(api: Served) -> None:
    async with api.client(READ_KEY) as reader:
        for path in ("/api/products/5", "/api/products/6", "/api/legacy/items/x", "/api/nope/1"):
            await reader.get(path)
    assert [(r.route, r.status) for r in api.records] == [
        ("/api/products/{product_id}", 200),
        ("/api/products/{product_id}", 200),
        ("/api/legacy/items/{item}", 200),  # inside a Mount: the whole template
        (UNMATCHED, 404),
    ]
    first = api.records[0]
    assert (first.key_id, first.key_name, first.method, first.authorized) == (
        1,
        "reader",
        "GET",
        True,
    )
    assert first.client == "127.0.0.1"
    assert first.at.tzinfo is UTC
    assert first.latency_ms > 0


async def test_unauthorized_attempts_are_recorded_with_their_route(api: Served) -> None:
    async with api.client() as anonymous:
        await anonymous.get("/api/products/7")
    async with api.client("aw_wrong") as stranger:
        await stranger.get("/api/legacy/items/3")
    async with api.client(INACTIVE_KEY) as retired:
        await retired.post("/api/products")
    async with api.client(READ_KEY) as reader:
        await reader.post("/api/products")
    assert [(r.route, r.method, r.status, r.key_id, r.authorized) for r in api.records] == [
        ("/api/products/{product_id}", "GET", 401, None, False),
        ("/api/legacy/items/{item}", "GET", 401, None, False),
        ("/api/products", "POST", 403, 3, False),
        ("/api/products", "POST", 403, 1, False),
    ]


async def test_a_failing_record_never_fails_the_request(serve: ServeFactory) -> None:
    calls: list[UsageRecord] = []

    def broken(usage: UsageRecord) -> None:
        calls.append(usage)
        raise RuntimeError("the queue is on fire")

    api = await serve(record=broken)
    async with api.client(READ_KEY) as reader:
        ok = await reader.get("/api/products")
    async with api.client() as anonymous:
        refused = await anonymous.get("/api/products")
    assert (ok.status_code, refused.status_code) == (200, 401)
    assert len(calls) == 2


# -- failed authentication -------------------------------------------------------------------


async def test_repeated_failed_keys_from_one_address_are_throttled(serve: ServeFactory) -> None:
    api = await serve(failed_auth_per_minute=3)
    async with api.client("aw_guess") as guesser:
        guesses = [(await guesser.get("/api/products")).status_code for _ in range(3)]
        blocked = await guesser.get("/api/products")
    assert guesses == [401, 401, 401]
    assert blocked.status_code == 429
    assert blocked.headers["Retry-After"] == "50"
    assert blocked.json() == {
        "detail": "Too many failed API key attempts from this address. Try again in 50 seconds"
    }
    # A valid key from the same address (a shared proxy, a NAT) is still served: the throttle
    # slows guessing and must never lock good clients out; the guesser stays refused.
    async with api.client(READ_KEY) as same_address:
        assert (await same_address.get("/api/products")).status_code == 200
    async with api.client("aw_guess") as guesser:
        assert (await guesser.get("/api/products")).status_code == 429
    # Another address is not affected.
    other = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with api.client(READ_KEY, transport=other) as elsewhere:
        assert (await elsewhere.get("/api/products")).status_code == 200
    assert api.records[-1].client == "127.0.0.2"


async def test_throttling_can_be_turned_off(serve: ServeFactory) -> None:
    api = await serve(failed_auth_per_minute=0)
    async with api.client("aw_guess") as guesser:
        statuses = {(await guesser.get("/api/products")).status_code for _ in range(40)}
    assert statuses == {401}


# -- public routes and public read -----------------------------------------------------------


async def test_public_routes_need_no_key_and_do_not_check_one(api: Served) -> None:
    async with api.client() as anonymous:
        assert (await anonymous.get("/healthz")).status_code == 200
    async with api.client("aw_wrong") as stranger:
        response = await stranger.get("/healthz")
    assert response.status_code == 200
    assert "X-RateLimit-Minute-Limit" not in response.headers
    assert api.records[-1].route == "/healthz" and api.records[-1].authorized


async def test_public_read_lets_reads_through_without_a_key(serve: ServeFactory) -> None:
    api = await serve(public_read=True)
    async with api.client() as anonymous:
        read = await anonymous.get("/api/products/2")
        write = await anonymous.post("/api/products")
    async with api.client("aw_wrong") as stranger:
        wrong = await stranger.get("/api/products/2")
    async with api.client(READ_KEY) as reader:
        keyed = await reader.get("/api/products/2")
    assert read.status_code == 200 and read.json() == {"id": 2, "key": None}
    assert "X-RateLimit-Minute-Limit" not in read.headers
    assert write.status_code == 401 and write.json() == {"detail": "Missing API key"}
    assert wrong.status_code == 401 and wrong.json() == {"detail": "Invalid API key"}
    assert keyed.json() == {"id": 2, "key": "reader"}
    assert keyed.headers["X-RateLimit-Minute-Remaining"] == "99"  # a sent key still counts
    assert (api.records[0].key_id, api.records[0].authorized) == (None, True)


async def test_a_custom_policy_decides_access(serve: ServeFactory) -> None:
    def everything_admin(method: str, path: str) -> str:
        return "public" if path == "/healthz" else "admin"

    api = await serve(policy=everything_admin)
    async with api.client(READ_KEY) as reader:
        response = await reader.get("/api/products")
    assert response.status_code == 403
    assert response.json() == {"detail": "Admin API key required"}


# -- the limiter's storage failing ----------------------------------------------------------


def closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_with_the_limiter_storage_down_requests_pass_without_limits(
    serve: ServeFactory,
) -> None:
    limiter = InboundLimiter(f"redis://127.0.0.1:{closed_port()}/0")
    api = await serve(limiter=limiter)
    async with api.client(READ_KEY) as reader:
        response = await reader.get("/api/products")
    assert response.status_code == 200
    assert "X-RateLimit-Minute-Limit" not in response.headers


async def test_with_fail_open_off_the_limiter_storage_down_refuses_with_503(
    serve: ServeFactory,
) -> None:
    limiter = InboundLimiter(f"redis://127.0.0.1:{closed_port()}/0")
    api = await serve(limiter=limiter, fail_open=False)
    async with api.client(READ_KEY) as reader:
        response = await reader.get("/api/products")
    assert response.status_code == 503
    assert response.json() == {"detail": "Rate limiter unavailable"}


async def test_with_the_shared_limiter_away_the_log_says_so_once_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A dead Redis under steady traffic, two minutes by the clock: one line when it goes,
    then one a minute with what was served without it and the failed retries (one a
    second) that were not logged one by one; failed keys are still counted, locally."""
    statuses: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    clock = FakeClock(NOON)
    shared = InboundLimiter(f"redis://127.0.0.1:{closed_port()}/0", clock=clock)
    fallback = InboundLimiter(clock=clock, defaults=(1000, 10_000, 100_000))
    middleware = ApiKeyMiddleware(
        app,
        keys=MemoryKeyStore(keys()),
        limiter=shared,
        fallback=fallback,
        record=lambda usage: None,
        failed_auth_per_minute=3,
        clock=clock,
    )

    def scope(key: str) -> dict[str, Any]:
        return {
            "type": "http",
            "method": "GET",
            "path": "/api/products",
            "headers": [(b"x-api-key", key.encode())],
            "client": ("127.0.0.1", 5000),
        }

    caplog.set_level(logging.INFO, logger="apiwatch")
    try:
        for _ in range(241):  # one request every half second, 0 to 120 s
            await middleware(scope(READ_KEY), receive, send)
            clock.advance(0.5)
        for _ in range(4):
            await middleware(scope("aw_guess"), receive, send)
    finally:
        await shared.close()
        await fallback.close()
    assert statuses == [200] * 241 + [401, 401, 401, 429]
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("apiwatch")]
    assert len(lines) == 3, lines
    assert lines[0].startswith("inbound limiter storage unavailable: ConnectionError")
    # At 60 s: requests 1 to 120 served without it; retries at 1, 2, … 60 s failed.
    assert "still unavailable" in lines[1]
    assert "120 operations served without it; 60 failed retries since the last line" in lines[1]
    assert "240 operations served without it; 60 failed retries since the last line" in lines[2]


# -- other ways of mounting -----------------------------------------------------------------


async def test_the_middleware_can_wrap_an_app_from_outside() -> None:
    records: list[UsageRecord] = []
    limiter = InboundLimiter(clock=FakeClock(NOON))
    wrapped = ApiKeyMiddleware(
        products_app(),
        keys=MemoryKeyStore(keys()),
        limiter=limiter,
        record=records.append,
    )
    try:
        async with serving(wrapped) as url, httpx.AsyncClient(base_url=url) as client:
            refused = await client.get("/api/products/3")
            ok = await client.get("/api/products/3", headers={"X-API-Key": READ_KEY})
    finally:
        await limiter.close()
    assert (refused.status_code, ok.status_code) == (401, 200)
    assert [r.route for r in records] == ["/api/products/{product_id}"] * 2


async def test_websocket_handshakes_need_a_key_too() -> None:
    app = FastAPI()

    @app.websocket("/api/stream")
    async def stream(socket: WebSocket) -> None:
        await socket.accept()
        seen = {
            "query": socket.scope["query_string"].decode(),
            "offered": socket.scope["subprotocols"],
        }
        await socket.send_text(json.dumps({"key": socket.state.api_key.name, **seen}))
        await socket.close()

    limiter = InboundLimiter(clock=FakeClock(NOON))
    guarded = guard(app, limiter=limiter, keys=keys())
    try:
        async with serving(app) as url:
            ws_url = url.replace("http://", "ws://") + "/api/stream"
            async with websockets.connect(ws_url) as ws:
                with pytest.raises(websockets.ConnectionClosed):
                    await ws.recv()
                refused = (ws.close_code, ws.close_reason)
            async with websockets.connect(f"{ws_url}?api_key={INACTIVE_KEY}") as ws:
                with pytest.raises(websockets.ConnectionClosed):
                    await ws.recv()
                inactive = ws.close_code
            async with websockets.connect(ws_url, additional_headers={"X-API-Key": READ_KEY}) as ws:
                by_header = json.loads(await ws.recv())
            async with websockets.connect(f"{ws_url}?a=1&api_key={READ_KEY}") as ws:
                by_query = json.loads(await ws.recv())
            async with websockets.connect(ws_url, subprotocols=["v1", f"apikey.{READ_KEY}"]) as ws:
                by_protocol = json.loads(await ws.recv())
    finally:
        await limiter.close()
    assert (refused, inactive) == ((4401, "Missing API key"), 4403)
    # Refused handshakes are recorded like refused requests (and so counted by reason);
    # the accepted ones are not usage of the request kind.
    refusals = [
        (r.route, r.method, r.status, r.key_id, r.authorized, r.refusal)
        for r in guarded.records
        if not r.authorized
    ]
    assert refusals == [
        ("/api/stream", "GET", 401, None, False, "missing_key"),
        ("/api/stream", "GET", 403, 3, False, "inactive_key"),
    ]
    assert by_header == {"key": "reader", "query": "", "offered": []}
    # The app never sees the key, wherever it came from.
    assert by_query == {"key": "reader", "query": "a=1", "offered": []}
    assert by_protocol == {"key": "reader", "query": "", "offered": ["v1"]}


async def test_the_record_is_made_once_after_the_response_is_sent() -> None:
    events: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        events.append("app returned")

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        events.append(message["type"])

    limiter = InboundLimiter(clock=FakeClock(NOON))
    middleware = ApiKeyMiddleware(
        app,
        keys=MemoryKeyStore(keys()),
        limiter=limiter,
        record=lambda usage: events.append(f"record {usage.status}"),
    )
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/api/products",
        "headers": [(b"x-api-key", READ_KEY.encode())],
        "client": ("127.0.0.1", 5000),
    }
    try:
        await middleware(scope, receive, send)
    finally:
        await limiter.close()
    assert events == ["http.response.start", "http.response.body", "app returned", "record 200"]
    assert scope["state"]["api_key"].name == "reader"


async def test_failed_auth_from_one_ipv6_64_is_counted_together() -> None:
    statuses: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("a refused request must not reach the app")

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    limiter = InboundLimiter(clock=FakeClock(NOON))
    middleware = ApiKeyMiddleware(
        app,
        keys=MemoryKeyStore(keys()),
        limiter=limiter,
        record=lambda usage: None,
        failed_auth_per_minute=2,
    )
    try:
        for host in ("2001:db8::1", "2001:db8::2", "2001:db8::3:4", "2001:db8:0:1::1"):
            scope = {
                "type": "http",
                "method": "GET",
                "path": "/api/products",
                "headers": [(b"x-api-key", b"aw_guess")],
                "client": (host, 5000),
            }
            await middleware(scope, receive, send)
    finally:
        await limiter.close()
    # Three guesses from one /64: the third is refused as throttled; another /64 is not.
    assert statuses == [401, 401, 429, 401]
