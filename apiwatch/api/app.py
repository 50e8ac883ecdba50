"""The FastAPI application: `create_app(settings)` builds it around a Runtime.

Settings are read here (and in the CLI) and passed down; nothing below reaches for them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from apiwatch import __version__
from apiwatch.api.routers import budgets, events, failures, logs, providers, schedule, status
from apiwatch.catalogue.loader import Catalogue
from apiwatch.runtime import open_runtime
from apiwatch.settings import Settings

DESCRIPTION = """
apiwatch probes the third-party APIs a product depends on, classifies every failure and
derives each provider's status (online, degraded, offline, unknown).
"""


def create_app(
    settings: Settings | None = None,
    *,
    catalogue: Catalogue | None = None,
    start_scheduler: bool | None = None,
) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_runtime(
            settings, catalogue=catalogue, start_scheduler=start_scheduler
        ) as runtime:
            app.state.runtime = runtime
            yield

    app = FastAPI(
        title="apiwatch",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url="/redoc",
    )
    for router in (
        status.router,
        providers.router,
        logs.router,
        failures.router,
        schedule.router,
        budgets.router,
        events.router,
    ):
        app.include_router(router)

    @app.get("/healthz", tags=["meta"], summary="Liveness of apiwatch itself")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
