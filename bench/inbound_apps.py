"""The server apps of `bench/inbound_overhead.py`: one trivial JSON GET route, bare or
behind one protection layer, chosen by the environment (one uvicorn process per variant).

INBOUND_BENCH_VARIANT: bare | instrumentator | slowapi | apiwatch-middleware | apiwatch-memory
                       | apiwatch-redis | apiwatch-redis-norecord | nine-headers
INBOUND_BENCH_KEY:     the API key the apiwatch variants accept
INBOUND_BENCH_DB:      the SQLite file the apiwatch variants record usage into
INBOUND_BENCH_REDIS:   Redis URL (apiwatch-redis); INBOUND_BENCH_PREFIX: its key prefix
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response

VARIANT = os.environ.get("INBOUND_BENCH_VARIANT", "bare")
ROUTE = "/api/items/{item_id}"
# Limits far above what a run sends: every request takes the allowed path.
HUGE = 10**9
NINE = [
    b"%s-%s" % (window, part)
    for window in (b"minute", b"hour", b"day")
    for part in (b"limit", b"remaining", b"reset")
]


def _route(app: FastAPI) -> None:
    @app.get(ROUTE)
    async def item(item_id: int) -> dict[str, Any]:
        return {"id": item_id, "name": "widget", "price": 9.5}


def _bare() -> FastAPI:
    app = FastAPI()
    _route(app)
    return app


def _instrumentator() -> FastAPI:
    from prometheus_fastapi_instrumentator import Instrumentator

    app = _bare()
    Instrumentator().instrument(app).expose(app)
    return app


def _slowapi() -> FastAPI:
    # The form slowapi's documentation shows (a decorator per route, the limiter on
    # app.state and its 429 handler), set up like apiwatch's variants: counted per API key
    # (the X-API-Key header), the same three windows (minute, hour, day) and its rate-limit
    # headers on. slowapi sends the headers of the window nearest its limit (Limit,
    # Remaining, Reset and Retry-After); apiwatch sends all three windows' (nine).
    from slowapi import Limiter, _rate_limit_exceeded_handler
    from slowapi.errors import RateLimitExceeded

    def api_key(request: Request) -> str:
        return request.headers.get("x-api-key", "")

    limiter = Limiter(key_func=api_key, headers_enabled=True)
    app = FastAPI()
    app.state.limiter = limiter
    app.add_exception_handler(RateLimitExceeded, _rate_limit_exceeded_handler)  # type: ignore[arg-type]

    @app.get(ROUTE)
    @limiter.limit(f"{HUGE}/minute;{HUGE}/hour;{HUGE}/day")
    async def item(request: Request, response: Response, item_id: int) -> dict[str, Any]:
        return {"id": item_id, "name": "widget", "price": 9.5}

    return app


def _nine_headers() -> FastAPI:
    # A floor, not a peer: a pass-through ASGI middleware that adds nine constant headers,
    # the cost any layer pays for sending apiwatch's nine rate-limit headers through uvicorn.
    app = _bare()
    extra = [(b"x-ratelimit-%s" % name, b"1000") for name in NINE]

    class NineHeaders:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            async def send_with_headers(message: Any) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", ()), *extra]
                await send(message)

            await self.app(scope, receive, send_with_headers)

    app.add_middleware(NineHeaders)
    return app


def _apiwatch(storage_uri: str, key_prefix: str, *, recording: bool = True) -> FastAPI:
    import apiwatch
    from apiwatch.inbound import (
        ApiKeyMiddleware,
        ApiKeyRecord,
        InboundLimiter,
        MemoryKeyStore,
        UsageRecord,
        hash_key,
    )
    from apiwatch.storage.db import create_engine, create_sessionmaker
    from apiwatch.storage.models import TABLES
    from apiwatch.storage.recorder import Recorder

    key = os.environ["INBOUND_BENCH_KEY"]
    # apiwatch's own engine: WAL and synchronous=NORMAL, as the app runs it.
    engine = create_engine(f"sqlite+aiosqlite:///{os.environ['INBOUND_BENCH_DB']}")
    recorder = Recorder(create_sessionmaker(engine))
    limiter = InboundLimiter(storage_uri, defaults=(HUGE, HUGE, HUGE), key_prefix=key_prefix)
    store = MemoryKeyStore({hash_key(key): ApiKeyRecord(1, "bench", "read", True, key[:8])})

    def discard(usage: UsageRecord) -> None:
        pass

    def record(usage: UsageRecord) -> None:
        # What apiwatch's own app does with each record: one row queued for the batched
        # recorder, which writes it to api_usage in the background.
        recorder.record(
            (
                "api_usage",
                {
                    "key_id": usage.key_id,
                    "key_name": usage.key_name,
                    "route": usage.route,
                    "method": usage.method,
                    "status": usage.status,
                    "latency_ms": usage.latency_ms,
                    "client": usage.client,
                    "authorized": usage.authorized,
                    "at": usage.at,
                },
            )
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with engine.begin() as connection:
            await connection.run_sync(TABLES["api_usage"].create, checkfirst=True)
        await recorder.start()
        try:
            yield
        finally:
            await recorder.stop()
            await limiter.close()
            await engine.dispose()
            batches = ""
            if limiter.script_calls:
                mean = limiter.script_hits / limiter.script_calls
                batches = f" redis_calls={limiter.script_calls} mean_batch={mean:.1f}"
            source = Path(apiwatch.__file__).parent.parent
            print(
                f"recorder: written={recorder.written} dropped={recorder.dropped}{batches}"
                f" apiwatch={source}",
                flush=True,
            )

    app = FastAPI(lifespan=lifespan)
    _route(app)
    app.add_middleware(
        ApiKeyMiddleware, keys=store, limiter=limiter, record=record if recording else discard
    )
    return app


def build(variant: str) -> FastAPI:
    if variant == "bare":
        return _bare()
    if variant == "instrumentator":
        return _instrumentator()
    if variant == "slowapi":
        return _slowapi()
    if variant == "nine-headers":
        return _nine_headers()
    prefix = os.environ.get("INBOUND_BENCH_PREFIX", "apiwatch-bench")
    if variant == "apiwatch-memory":
        return _apiwatch("memory://", prefix)
    if variant == "apiwatch-redis":
        return _apiwatch(os.environ["INBOUND_BENCH_REDIS"], prefix)
    # The middleware alone, its usage records discarded (with Redis: a diagnostic).
    if variant == "apiwatch-middleware":
        return _apiwatch("memory://", prefix, recording=False)
    if variant == "apiwatch-redis-norecord":
        return _apiwatch(os.environ["INBOUND_BENCH_REDIS"], prefix, recording=False)
    raise SystemExit(f"unknown INBOUND_BENCH_VARIANT {variant!r}")


app = build(VARIANT)
