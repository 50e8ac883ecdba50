"""The server of the two-process Redis test: a tiny FastAPI app behind the middleware with
its limits in Redis, configured from the environment (run by uvicorn in a subprocess).

INBOUND_TEST_REDIS (URL), INBOUND_TEST_PREFIX (Redis key prefix), INBOUND_TEST_KEY (the
accepted key), INBOUND_TEST_LIMITS ("minute,hour,day" for that key).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from apiwatch.inbound import (
    ApiKeyMiddleware,
    ApiKeyRecord,
    InboundLimiter,
    MemoryKeyStore,
    UsageRecord,
    hash_key,
)

KEY = os.environ["INBOUND_TEST_KEY"]
minute, hour, day = (int(n) for n in os.environ["INBOUND_TEST_LIMITS"].split(","))
limiter = InboundLimiter(
    os.environ["INBOUND_TEST_REDIS"], key_prefix=os.environ["INBOUND_TEST_PREFIX"]
)
store = MemoryKeyStore(
    {
        hash_key(KEY): ApiKeyRecord(
            1, "shared", "read", True, KEY[:8], minute_limit=minute, hour_limit=hour, day_limit=day
        )
    }
)


def discard(usage: UsageRecord) -> None:
    pass


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    await limiter.close()


app = FastAPI(lifespan=lifespan)


@app.get("/api/ping")
async def ping() -> dict[str, int]:
    return {"pid": os.getpid()}


app.add_middleware(ApiKeyMiddleware, keys=store, limiter=limiter, record=discard)
