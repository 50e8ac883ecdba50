"""The FastAPI application: `create_app(settings)` builds it around a Runtime.

Settings are read here (and in the CLI) and passed down; nothing below reaches for them.
Every request passes the inbound middleware first (API key, minute/hour/day limits, usage
record); the key store and limiter are built here so the middleware exists before the
lifespan starts, and the runtime fills the store from the database.
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError

from apiwatch import __version__
from apiwatch.api import contract
from apiwatch.api.docs_pages import add_docs_pages
from apiwatch.api.query_check import UNKNOWN_QUERY, reject_unknown_query
from apiwatch.api.routers import (
    alerts,
    badges,
    budgets,
    certificates,
    charts,
    cluster,
    data,
    events,
    failures,
    keys,
    live,
    logs,
    maintenance,
    metrics,
    overview,
    pages,
    provider_admin,
    provider_history,
    providers,
    schedule,
    slo,
    status,
    status_page,
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
from apiwatch.logs import install_redaction
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


def access_policy(method: str, path: str, *, metrics_public: bool = True) -> Access:
    """apiwatch's routes: the inbound default, except that acknowledging an alert is an
    operator's act rather than configuration, so a read key may do it (but never no key,
    even when reads are public: an acknowledgement stops the alert's repeats), one key's
    usage and the refused requests are for admins, and /metrics needs a key unless metrics
    are public."""
    if path == "/metrics" and not metrics_public:
        return "keyed"  # a key even when reads are public (the demo)
    if method == "POST" and path.startswith("/api/alerts/") and path.endswith("/acknowledge"):
        return "keyed"  # a read key may; an anonymous visitor of a public demo may not
    if path.startswith(("/api/usage/keys", "/api/usage/refusals")):
        # Owners and limits of keys, networks of refused clients: like the key listing.
        return "admin"
    if pages.is_public_page(path):
        return "public"  # the dashboard's shells, the status page and badges
    return default_policy(method, path)


# Operations that answer without the database, so never with its 503 (see `database_away`);
# every other operation declares that 503. tests/api/test_contract_outage.py cuts the
# database and holds both sides: these answer, the rest answer only what they declare.
FROM_MEMORY = frozenset(
    {
        ("GET", "/healthz"),
        ("GET", "/api/status"),
        ("GET", "/api/providers"),  # its 24 h uptimes are left out while the database is away
        ("GET", "/api/whoami"),
        ("GET", "/api/cluster"),
        ("GET", "/api/rate-limits"),
        ("GET", "/api/config/keys"),
        ("POST", "/api/config/keys/test"),
        ("POST", "/api/schedule/trigger"),  # results reach the database through the recorder
        ("GET", "/api/data/latest"),
        ("GET", "/api/data/books"),
        ("GET", "/api/freshness"),
        ("GET", "/api/alerts/settings"),
        ("GET", "/badge/{provider_id}/status.svg"),
    }
)
NUL_REFUSED = "a NUL byte (%00) is not allowed in the path or query string"
_NUL_BODY = json.dumps({"detail": NUL_REFUSED}).encode()


class RefuseNul:
    """400 for a NUL byte in the path or query: PostgreSQL cannot store or compare text
    with one (it answered 500), and no apiwatch parameter has a use for it. 400 in the
    shared error model, which every operation declares (the app-wide `responses=` below),
    so the refusal is in the document even for routes that take no parameters."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and (
            any(nul in scope.get("query_string", b"") for nul in (b"%00", b"\x00"))
            or "\x00" in scope.get("path", "")
        ):
            await send(
                {
                    "type": "http.response.start",
                    "status": 400,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(_NUL_BODY)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": _NUL_BODY})
            return
        await self.app(scope, receive, send)


def create_app(
    settings: Settings | None = None,
    *,
    catalogue: Catalogue | None = None,
    start_scheduler: bool | None = None,
    on_first_key: Callable[[str], None] | None = None,
) -> FastAPI:
    settings = settings or Settings()
    # One policy for the middleware and the OpenAPI document, so they cannot disagree.
    policy = functools.partial(access_policy, metrics_public=settings.metrics_public)
    # Whatever logging the server runs under, an `api_key` in a URL never reaches its log.
    install_redaction()
    key_store = MemoryKeyStore()
    limiter = InboundLimiter(
        limiter_storage_uri(settings.redis_url),
        defaults=(
            settings.api_limit_per_minute,
            settings.api_limit_per_hour,
            settings.api_limit_per_day,
        ),
        timeout_s=settings.redis_timeout_ms / 1000,
    )
    # While a shared (Redis) limiter fails, requests are counted in this process instead.
    fallback = None
    if limiter.shared:
        fallback = InboundLimiter("memory://", defaults=limiter.defaults)

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
                if fallback is not None:
                    await fallback.close()

    app = FastAPI(
        title="apiwatch",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served from local copies instead of a CDN: docs_pages.py
        redoc_url=None,
        dependencies=[Depends(reject_unknown_query)],
        # Documented on every operation: the dependency above answers it for any of them.
        responses=contract.errors(**{"400": UNKNOWN_QUERY}),
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
        policy=policy,
        public_read=settings.public_read,
        failed_auth_per_minute=settings.failed_auth_per_minute,
        fallback=fallback,
    )
    app.add_middleware(RefuseNul)  # outermost: before authentication
    # A worker probes and collects; of the HTTP surface it serves only /healthz and its
    # own /metrics (the probes' counters live in the worker that probed).
    routers = (
        (metrics.router,)
        if settings.role == "worker"
        else (
            status.router,
            providers.router,
            certificates.router,
            provider_admin.router,
            logs.router,
            failures.router,
            schedule.router,
            budgets.router,
            events.router,
            data.router,
            keys.router,
            alerts.router,
            maintenance.router,
            charts.router,
            usage.router,
            cluster.router,
            slo.router,
            live.router,
            overview.router,
            provider_history.router,
            pages.router,
            status_page.router,
            badges.router,
            metrics.router,
        )
    )
    for router in routers:
        app.include_router(router)
    # /static/docs first: the dashboard's /static mount would otherwise answer for it.
    add_docs_pages(app)
    if settings.role != "worker":
        pages.mount_static(app)

    contract.install(app, policy=policy, public_read=settings.public_read, from_memory=FROM_MEMORY)

    async def database_away(request: Request, exc: Exception) -> JSONResponse:
        # A read that needs the database while it is away: say so, do not 500. The status
        # and provider pages answer from memory meanwhile.
        runtime = getattr(request.app.state, "runtime", None)
        if runtime is not None and "database" in runtime.dependencies:
            runtime.dependencies["database"].failed(exc)
        return JSONResponse(
            status_code=503,
            content={
                "detail": "the database is unavailable; results are kept and written when "
                "it is back. /api/status and /api/providers answer from memory meanwhile",
            },
            headers={"retry-after": "5"},
        )

    app.add_exception_handler(DBAPIError, database_away)
    app.add_exception_handler(OSError, database_away)
    app.add_exception_handler(TimeoutError, database_away)

    @app.get("/healthz", tags=["meta"], summary="Liveness of apiwatch itself")
    async def healthz(request: Request) -> dict[str, object]:
        """200 while the process serves ("ok", or "degraded" with the reasons: it keeps
        probing through an outage, so a restart would not help and is not asked for)."""
        runtime = getattr(request.app.state, "runtime", None)
        reasons = runtime.degraded_reasons() if runtime is not None else []
        return {"status": "degraded" if reasons else "ok", "reasons": reasons}

    return app
