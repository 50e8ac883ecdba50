"""The real application in-process: `create_app` with its lifespan (runtime, middleware), an
httpx client over ASGI, and a sessionmaker on the same database for arranging rows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from apiwatch.storage.db import create_engine, create_sessionmaker


@asynccontextmanager
async def in_process(
    application: FastAPI, database_url: str
) -> AsyncIterator[tuple[httpx.AsyncClient, async_sessionmaker[AsyncSession]]]:
    engine = create_engine(database_url)
    try:
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://apiwatch") as client:
                yield client, create_sessionmaker(engine)
    finally:
        await engine.dispose()
