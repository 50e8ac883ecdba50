"""A small FastAPI app of its own (not apiwatch's) guarded by the middleware, and a helper
that serves any ASGI app with uvicorn on a free 127.0.0.1 port inside the test's loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException, Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from apiwatch.inbound import (
    ApiKeyMiddleware,
    ApiKeyRecord,
    InboundLimiter,
    MemoryKeyStore,
    UsageRecord,
    hash_key,
)

READ_KEY = "aw_inbound-tests-read-key-000000000000000000"
ADMIN_KEY = "aw_inbound-tests-admin-key-00000000000000000"


def products_app() -> FastAPI:
    """ "A user's own product": reads, writes, a path parameter, a mounted sub-app."""
    app = FastAPI()

    @app.get("/api/products/{product_id}")
    async def product(product_id: int, request: Request) -> dict[str, Any]:
        key = request.state.api_key if hasattr(request.state, "api_key") else None
        return {"id": product_id, "key": None if key is None else key.name}

    @app.get("/api/products")
    async def products() -> list[int]:
        return [1, 2, 3]

    @app.post("/api/products")
    async def create_product() -> dict[str, bool]:
        return {"created": True}

    @app.get("/api/boom")
    async def boom() -> None:
        raise HTTPException(418, "teapot")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    async def legacy(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"legacy {request.path_params['item']}")

    app.router.routes.append(Mount("/api/legacy", routes=[Route("/items/{item}", legacy)]))
    return app


@dataclass
class Guarded:
    """The app, its middleware's collaborators, and what the middleware recorded."""

    app: Any
    store: MemoryKeyStore
    limiter: InboundLimiter
    records: list[UsageRecord] = field(default_factory=list)


def guard(
    app: FastAPI,
    *,
    limiter: InboundLimiter | None = None,
    record: Callable[[UsageRecord], None] | None = None,
    keys: dict[str, ApiKeyRecord] | None = None,
    **options: Any,
) -> Guarded:
    store = MemoryKeyStore(
        keys
        if keys is not None
        else {
            hash_key(READ_KEY): ApiKeyRecord(1, "reader", "read", True, READ_KEY[:8]),
            hash_key(ADMIN_KEY): ApiKeyRecord(2, "admin", "admin", True, ADMIN_KEY[:8]),
        }
    )
    guarded = Guarded(app, store, limiter or InboundLimiter())
    app.add_middleware(
        ApiKeyMiddleware,
        keys=store,
        limiter=guarded.limiter,
        record=record or guarded.records.append,
        **options,
    )
    return guarded


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """Serve `app` on 127.0.0.1 (a free port) in this loop; yields its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
