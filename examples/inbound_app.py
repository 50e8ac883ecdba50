"""A product's own API protected by apiwatch's inbound middleware: API key, minute/hour/day
limits with `X-RateLimit-*` headers, failed-auth throttling and per-route usage, with no
database (keys in memory, usage counted in memory and shown at /api/usage).

Run:
    export EXAMPLE_API_KEY=$(python -c \
        'from apiwatch.inbound import generate_key; print(generate_key())')
    uvicorn examples.inbound_app:app --port 8000
    curl -i -H "X-API-Key: $EXAMPLE_API_KEY" http://127.0.0.1:8000/api/products/1

Settings (environment): EXAMPLE_API_KEY (required), EXAMPLE_LIMITS ("minute,hour,day",
default "100,1000,10000"), EXAMPLE_REDIS_URL (share limits across workers through Redis).
"""

from __future__ import annotations

import functools
import os
from collections import Counter
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, HTTPException, Request

from apiwatch.inbound import (
    Access,
    ApiKeyMiddleware,
    ApiKeyRecord,
    InboundLimiter,
    MemoryKeyStore,
    UsageRecord,
    hash_key,
    key_prefix,
)

PRODUCTS = {
    1: {"id": 1, "name": "kettle", "price": 39.0},
    2: {"id": 2, "name": "mug", "price": 9.5},
}


def policy(method: str, path: str) -> Access:
    """This product's rules: its API needs a key for every method, health is public."""
    if path.startswith("/api/"):
        return "read"
    return "public"


def create_app(
    *,
    api_key: str,
    limits: tuple[int, int, int] = (100, 1000, 10000),
    storage_uri: str = "memory://",
    clock: Callable[[], float] | None = None,
) -> FastAPI:
    """The app, accepting `api_key`; `clock` (epoch seconds) is for tests."""
    usage: Counter[tuple[str, str, int]] = Counter()

    def record(item: UsageRecord) -> None:
        # Must not block: a real product would queue this for a database or a log shipper.
        usage[(item.method, item.route, item.status)] += 1

    timing = {} if clock is None else {"clock": clock}
    limiter = InboundLimiter(storage_uri, defaults=limits, key_prefix="example", **timing)
    keys = MemoryKeyStore(
        {hash_key(api_key): ApiKeyRecord(1, "example client", "read", True, key_prefix(api_key))}
    )
    app = FastAPI(title="Example product")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/products")
    async def products() -> list[dict[str, Any]]:
        return list(PRODUCTS.values())

    @app.get("/api/products/{product_id}")
    async def product(product_id: int, request: Request) -> dict[str, Any]:
        if product_id not in PRODUCTS:
            raise HTTPException(404, "no such product")
        # The middleware leaves the caller's key record here.
        return {**PRODUCTS[product_id], "caller": request.state.api_key.name}

    @app.get("/api/usage")
    async def usage_counts() -> list[dict[str, Any]]:
        return [
            {"method": m, "route": r, "status": s, "count": n}
            for (m, r, s), n in sorted(usage.items())
        ]

    app.add_middleware(
        ApiKeyMiddleware,
        keys=keys,
        limiter=limiter,
        record=record,
        policy=policy,
        **timing,
    )
    return app


@functools.cache
def from_environment() -> FastAPI:
    key = os.environ.get("EXAMPLE_API_KEY")
    if not key:
        raise SystemExit(
            "set EXAMPLE_API_KEY first, e.g.: export EXAMPLE_API_KEY=$(python -c "
            "'from apiwatch.inbound import generate_key; print(generate_key())')"
        )
    minute, hour, day = (
        int(n) for n in os.environ.get("EXAMPLE_LIMITS", "100,1000,10000").split(",")
    )
    return create_app(
        api_key=key,
        limits=(minute, hour, day),
        storage_uri=os.environ.get("EXAMPLE_REDIS_URL") or "memory://",
    )


def __getattr__(name: str) -> Any:
    # `uvicorn examples.inbound_app:app` builds the app from the environment on first use,
    # so importing `create_app` (as the tests do) needs no environment.
    if name == "app":
        return from_environment()
    raise AttributeError(name)
