"""Errors to Sentry, opt-in: an exception in a scheduled job, or in an API request, reaches a
local HTTP server standing in for Sentry's ingest, through the real sentry-sdk, with every
secret scrubbed."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import sentry_sdk
import structlog
import uvicorn
from aiohttp import web

from apiwatch.api.app import create_app
from apiwatch.logs import configure_logging
from apiwatch.runtime.sentry import FILTERED, Scrubber, _to_sentry, init_sentry, url_password
from apiwatch.scheduler.loop import IntervalScheduler
from apiwatch.settings import Settings

PROVIDER_KEY = "etherscan-secret-key-8c1f0a9d"
DB_PASSWORD = "db-pass-71b2c"
API_KEY = "aw_Zx9yQmX2s8Lr0KtV7nB4cD6eF1gH3jK5lM7nP9qR2s"
DB_URL = f"postgresql+asyncpg://apiwatch:{DB_PASSWORD}@db.internal/apiwatch"


class Ingest:
    """What Sentry's envelope endpoint received."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def envelope(self, request: web.Request) -> web.Response:
        # aiohttp has already undone the SDK's Content-Encoding (gzip) by now.
        self.bodies.append(await request.read())
        return web.json_response({"id": "0" * 32})


@pytest.fixture
async def ingest():
    sink = Ingest()
    app = web.Application()
    app.router.add_post("/api/{project}/envelope/", sink.envelope)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield sink, f"http://publickey@127.0.0.1:{port}/1"
    finally:
        sentry_sdk.init(dsn=None)  # the SDK is global: switch it off for the other tests
        processors = structlog.get_config()["processors"]
        structlog.configure(processors=[p for p in processors if p is not _to_sentry])
        await runner.cleanup()


async def test_a_failing_job_reaches_sentry_without_a_secret(ingest) -> None:
    sink, dsn = ingest
    configure_logging(level="INFO", json=True)
    assert init_sentry(dsn, secrets=[PROVIDER_KEY, url_password(DB_URL)])

    async def job() -> None:
        raise RuntimeError(
            f"upstream said no to https://api.example.test/v2?apikey={PROVIDER_KEY}&page=2 "
            f"while writing to {DB_URL} for X-API-Key: {API_KEY}"
        )

    scheduler = IntervalScheduler()
    scheduler.add("failing_job", 60.0, job, first_within=0.01)
    scheduler.start()
    try:
        for _ in range(100):
            await asyncio.sleep(0.05)
            await asyncio.to_thread(sentry_sdk.flush, 1)  # the ingest runs on this loop
            if sink.bodies:
                break
    finally:
        await scheduler.stop()
    assert sink.bodies, "no event reached the local ingest"
    body = b"\n".join(sink.bodies).decode()
    events = [json.loads(line) for line in body.splitlines() if '"exception"' in line]
    assert events, body[:2000]
    exc = events[0]["exception"]["values"][-1]
    assert exc["type"] == "RuntimeError"
    assert "job_failed" in body  # the scheduler's log event is the message
    for secret in (PROVIDER_KEY, DB_PASSWORD, API_KEY):
        assert secret not in body
    assert FILTERED in exc["value"]


def test_the_scrubber_masks_known_and_secret_shaped_values() -> None:
    scrub = Scrubber(["s3cr3t-value", None, "ab"])  # short and empty values are ignored
    event = {
        "message": "token s3cr3t-value",
        "extra": {"url": "https://x.test/?api_key=abc123&x=1", "k": [API_KEY]},
        "request": {"headers": {"X-API-Key": API_KEY}, "data": "body", "url": "/api/status"},
    }
    out = scrub(event, {})
    assert out["message"] == f"token {FILTERED}"
    assert out["extra"]["url"] == f"https://x.test/?api_key={FILTERED}&x=1"
    assert out["extra"]["k"] == [FILTERED]
    assert out["request"] == {"url": "/api/status"}  # headers and bodies never leave


def test_without_a_dsn_sentry_stays_off() -> None:
    assert init_sentry(None, secrets=["x"]) is False
    assert url_password("not a url ::") is None and url_password(DB_URL) == DB_PASSWORD


async def test_an_unexpected_error_in_an_api_request_reaches_sentry_without_a_secret(
    ingest, tmp_path
) -> None:
    """The real app behind uvicorn, with one extra route that fails the way a handler bug
    would; the request carries the admin key in its header and a provider key in its query string,
    and the error's message names a provider key and the database URL."""
    sink, dsn = ingest
    configure_logging(level="INFO", json=True)
    assert init_sentry(dsn, secrets=[PROVIDER_KEY, API_KEY, url_password(DB_URL)])
    settings = Settings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'sentry.db'}",
        admin_key=API_KEY,
        scheduler_enabled=False,
    )
    app = create_app(settings, start_scheduler=False)

    async def broken(symbol: str = "") -> dict[str, str]:
        raise LookupError(f"no entry for {symbol} in {DB_URL}")

    app.add_api_route("/api/broken", broken)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), task.result()
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            answer = await client.get(
                "/api/broken", params={"symbol": PROVIDER_KEY}, headers={"X-API-Key": API_KEY}
            )
        assert answer.status_code == 500, answer.text
        for _ in range(100):
            await asyncio.to_thread(sentry_sdk.flush, 1)  # the ingest runs on this loop
            if any(b'"LookupError"' in body for body in sink.bodies):
                break
            await asyncio.sleep(0.05)
    finally:
        server.should_exit = True
        await task
    body = b"\n".join(sink.bodies).decode()
    events = [json.loads(line) for line in body.splitlines() if '"LookupError"' in line]
    assert events, f"no LookupError reached the local ingest: {body[:2000]}"
    exc = events[0]["exception"]["values"][-1]
    assert exc["type"] == "LookupError" and FILTERED in exc["value"]
    assert "/api/broken" in json.dumps(events[0].get("request", {}))  # which request failed
    for secret in (PROVIDER_KEY, DB_PASSWORD, API_KEY):
        assert secret not in body
