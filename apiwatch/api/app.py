"""The FastAPI application: `create_app(settings)` builds it around a Runtime.

Settings are read here (and in the CLI) and passed down; nothing below reaches for them.
Every request passes the inbound middleware first (API key, minute/hour/day limits, usage
record); the key store and limiter are built here so the middleware exists before the
lifespan starts, and the runtime fills the store from the database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from apiwatch import __version__
from apiwatch.api.routers import (
    alerts,
    budgets,
    charts,
    data,
    events,
    failures,
    keys,
    logs,
    providers,
    schedule,
    status,
    usage,
)
from apiwatch.catalogue.loader import Catalogue
from apiwatch.inbound import (
    Access,
    ApiKeyMiddleware,
    InboundLimiter,
    MemoryKeyStore,
    UsageRecord,
    default_policy,
)
from apiwatch.runtime import open_runtime
from apiwatch.settings import Settings

DESCRIPTION = """
apiwatch probes the third-party APIs a product depends on, classifies every failure and
derives each provider's status (online, degraded, offline, unknown).

Send your key in the `X-API-Key` header. Read routes need a read or admin key (unless the
server runs with `APIWATCH_PUBLIC_READ=true`); key management, settings, triggers and key
tests need an admin key. Every response to a keyed request carries
`X-RateLimit-{Minute,Hour,Day}-{Limit,Remaining,Reset}`.
"""


def limiter_storage_uri(redis_url: str | None) -> str:
    """The `limits` storage: shared through Redis when there is one, else in memory."""
    if not redis_url:
        return "memory://"
    return redis_url if redis_url.startswith("async+") else f"async+{redis_url}"


def access_policy(method: str, path: str) -> Access:
    """apiwatch's routes: the inbound default, except that acknowledging an alert is an
    operator's act rather than configuration, so a read key may do it, and one key's usage
    page is for admins."""
    if method == "POST" and path.startswith("/api/alerts/") and path.endswith("/acknowledge"):
        return "read"
    if path.startswith("/api/usage/keys"):
        return "admin"  # it shows the key's owner and limits, like the key listing
    return default_policy(method, path)


def create_app(
    settings: Settings | None = None,
    *,
    catalogue: Catalogue | None = None,
    start_scheduler: bool | None = None,
    on_first_key: Callable[[str], None] | None = None,
) -> FastAPI:
    settings = settings or Settings()
    key_store = MemoryKeyStore()
    limiter = InboundLimiter(
        limiter_storage_uri(settings.redis_url),
        defaults=(
            settings.api_limit_per_minute,
            settings.api_limit_per_hour,
            settings.api_limit_per_day,
        ),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_runtime(
            settings,
            catalogue=catalogue,
            start_scheduler=start_scheduler,
            key_store=key_store,
            on_first_key=on_first_key,
        ) as runtime:
            app.state.runtime = runtime
            try:
                yield
            finally:
                await limiter.close()

    app = FastAPI(
        title="apiwatch",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url="/redoc",
    )

    def record(usage: UsageRecord) -> None:
        runtime = getattr(app.state, "runtime", None)
        if runtime is not None:
            runtime.access.record_usage(usage)

    app.add_middleware(
        ApiKeyMiddleware,
        keys=key_store,
        limiter=limiter,
        record=record,
        policy=access_policy,
        public_read=settings.public_read,
        failed_auth_per_minute=settings.failed_auth_per_minute,
    )
    for router in (
        status.router,
        providers.router,
        logs.router,
        failures.router,
        schedule.router,
        budgets.router,
        events.router,
        data.router,
        keys.router,
        alerts.router,
        charts.router,
        usage.router,
    ):
        app.include_router(router)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Where, what and why, without echoing the input: it may be a secret, and a NaN in
        # it cannot even be written as JSON (the default handler answers that with a 500).
        detail = [
            {
                "loc": list(error.get("loc", ())),
                "msg": error.get("msg", ""),
                "type": error.get("type", ""),
            }
            for error in exc.errors()
        ]
        return JSONResponse(status_code=422, content={"detail": detail})

    @app.get("/healthz", tags=["meta"], summary="Liveness of apiwatch itself")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
