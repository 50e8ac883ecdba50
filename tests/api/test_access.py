"""apiwatch's own API behind its keys: exact errors, admin routes, key management, limits,
usage records and the first-start admin key, over real HTTP against SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from sqlalchemy import select, text

from apiwatch.settings import Settings
from apiwatch.storage.db import create_engine
from apiwatch.storage.models import ApiKey, ApiUsage
from tests.api.test_api import serve
from tests.conftest import empty_tables

# Whole-file wall clock for the test processes' ordering (tests/conftest.py).
pytestmark = pytest.mark.slow(22)

ADMIN = "aw_access-tests-admin-key-0000000000000000"


@dataclass
class Server:
    url: str
    db_url: str
    first_keys: list[str] = field(default_factory=list)

    def client(self, key: str | None = None) -> httpx.AsyncClient:
        headers = {"X-API-Key": key} if key is not None else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30)


async def start(db_url: str, **overrides: object) -> AsyncIterator[Server]:
    settings = Settings(_env_file=None, database_url=db_url, recorder_flush_ms=10, **overrides)
    first: list[str] = []
    server, task, port = await serve(settings, on_first_key=first.append)
    try:
        yield Server(f"http://127.0.0.1:{port}", db_url, first)
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def api(migrated_db_url: str) -> AsyncIterator[Server]:
    await empty_tables(migrated_db_url)
    async for server in start(migrated_db_url, admin_key=ADMIN):
        yield server


async def test_missing_unknown_and_inactive_keys_get_the_exact_errors(api: Server) -> None:
    async with api.client() as anonymous:
        response = await anonymous.get("/api/status")
        assert response.status_code == 401
        assert response.json() == {"detail": "Missing API key"}
        assert (await anonymous.get("/healthz")).status_code == 200  # liveness stays public
    async with api.client("aw_not-a-key") as stranger:
        response = await stranger.get("/api/status")
        assert response.status_code == 401
        assert response.json() == {"detail": "Invalid API key"}
    async with api.client(ADMIN) as admin:
        created = (await admin.post("/api/keys", json={"name": "ci", "scope": "read"})).json()
        patched = await admin.patch(f"/api/keys/{created['id']}", json={"active": False})
        assert patched.status_code == 200 and patched.json()["active"] is False
    async with api.client(created["key"]) as reader:
        response = await reader.get("/api/status")
        assert response.status_code == 403
        assert response.json() == {"detail": "API key is inactive"}


async def test_admin_routes_refuse_a_read_key(api: Server) -> None:
    async with api.client(ADMIN) as admin:
        created = (await admin.post("/api/keys", json={"name": "dash", "scope": "read"})).json()
    async with api.client(created["key"]) as reader:
        assert (await reader.get("/api/status")).status_code == 200
        for method, path in (
            ("POST", "/api/keys"),
            ("GET", "/api/keys"),
            ("POST", "/api/schedule/trigger"),
            ("POST", "/api/config/keys/test"),
            ("GET", "/api/usage/keys/1"),
            ("POST", "/api/silences"),
        ):
            response = await reader.request(method, path, json={})
            assert response.status_code == 403, (method, path)
            assert response.json() == {"detail": "Admin API key required"}


async def test_a_key_is_shown_once_and_stored_only_as_a_hash(api: Server) -> None:
    async with api.client(ADMIN) as admin:
        response = await admin.post("/api/keys", json={"name": "bot", "scope": "read"})
        assert response.status_code == 201
        key = response.json()["key"]
        listing = (await admin.get("/api/keys")).json()["keys"]
    bot = next(k for k in listing if k["name"] == "bot")
    assert bot["key"].endswith("…") and key.startswith(bot["key"][:-1])
    assert key not in str(listing) and "key_hash" not in bot
    engine = create_engine(api.db_url)
    try:
        async with engine.connect() as connection:
            rows = (await connection.execute(select(ApiKey.__table__))).all()
    finally:
        await engine.dispose()
    assert all(key not in str(tuple(row)) for row in rows)
    assert any(len(row.key_hash) == 64 for row in rows)


async def test_minute_limit_override_gives_429_with_retry_after_and_headers(api: Server) -> None:
    async with api.client(ADMIN) as admin:
        created = (await admin.post("/api/keys", json={"name": "tight", "minute_limit": 2})).json()
    async with api.client(created["key"]) as tight:
        first = await tight.get("/api/status")
        assert first.headers["X-RateLimit-Minute-Limit"] == "2"
        assert first.headers["X-RateLimit-Minute-Remaining"] == "1"
        assert first.headers["X-RateLimit-Hour-Limit"] == "1000"
        assert first.headers["X-RateLimit-Day-Limit"] == "10000"
        await tight.get("/api/status")
        refused = await tight.get("/api/status")
    assert refused.status_code == 429
    seconds = int(refused.headers["Retry-After"])
    assert 0 < seconds <= 60
    assert refused.json() == {
        "detail": f"Rate limit exceeded for minute. Try again in {seconds} seconds"
    }


async def test_every_request_is_recorded_with_its_route_template(api: Server) -> None:
    async with api.client(ADMIN) as admin:
        await admin.get("/api/providers/binance")
        await admin.get("/api/providers/coingecko")
    async with api.client() as anonymous:
        await anonymous.get("/api/providers/binance")
    await asyncio.sleep(0.2)  # the recorder flushes every 10 ms here
    engine = create_engine(api.db_url)
    try:
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    select(ApiUsage.__table__).where(ApiUsage.route.like("/api/providers%"))
                )
            ).all()
    finally:
        await engine.dispose()
    assert {row.route for row in rows} == {"/api/providers/{provider_id}"}
    # The refused request is counted per minute and network, not stored as a usage row.
    assert sorted((row.authorized, row.status) for row in rows) == [(True, 200), (True, 200)]
    async with api.client(ADMIN) as admin:
        keys = (await admin.get("/api/keys")).json()["keys"]
    assert next(k for k in keys if k["scope"] == "admin")["usage_count"] >= 2


async def test_first_start_without_keys_creates_one_admin_key_and_hands_it_over_once(
    migrated_db_url: str,
) -> None:
    await empty_tables(migrated_db_url)
    async for server in start(migrated_db_url):
        assert len(server.first_keys) == 1
        async with server.client(server.first_keys[0]) as admin:
            assert (await admin.get("/api/keys")).status_code == 200
    async for server in start(migrated_db_url):
        assert server.first_keys == []  # a key exists now: nothing is created or shown


async def test_public_read_opens_reads_but_not_admin_routes(migrated_db_url: str) -> None:
    await empty_tables(migrated_db_url)
    async for server in start(migrated_db_url, admin_key=ADMIN, public_read=True):
        async with server.client() as anonymous:
            assert (await anonymous.get("/api/status")).status_code == 200
            response = await anonymous.post("/api/keys", json={"name": "x"})
            assert response.status_code == 401
            assert response.json() == {"detail": "Missing API key"}
            # Acknowledging stops an alert's repeats: never anonymous, even in the demo.
            response = await anonymous.post("/api/alerts/424242/acknowledge", json={})
            assert response.status_code == 401
            assert response.json() == {"detail": "Missing API key"}
        async with server.client(ADMIN) as admin:
            made = await admin.post("/api/keys", json={"name": "ops", "scope": "read"})
        async with server.client(made.json()["key"]) as reader:
            # Past the key check: a read key may acknowledge; there is no such alert.
            response = await reader.post("/api/alerts/424242/acknowledge", json={})
            assert response.status_code == 404, response.text


async def test_bad_key_input_gets_4xx_with_a_reason(api: Server) -> None:
    async with api.client(ADMIN) as admin:
        assert (await admin.post("/api/keys", json={"name": ""})).status_code == 422
        assert (
            await admin.post("/api/keys", json={"name": "x", "scope": "root"})
        ).status_code == 422
        assert (await admin.patch("/api/keys/999999", json={"active": True})).status_code == 404
        assert (
            await admin.patch("/api/keys/99999999999", json={"active": True})
        ).status_code == 404
        assert (await admin.delete("/api/keys/424242")).status_code == 404
        response = await admin.patch("/api/keys/1", json={})
        assert response.status_code in (404, 422) and "detail" in response.json()
    engine = create_engine(api.db_url)
    try:
        async with engine.connect() as connection:
            assert (await connection.execute(text("SELECT count(*) FROM api_keys"))).scalar() == 1
    finally:
        await engine.dispose()


async def test_usage_is_summarized_per_key_and_route(api: Server) -> None:
    async with api.client(ADMIN) as admin:
        created = (await admin.post("/api/keys", json={"name": "metrics"})).json()
    async with api.client(created["key"]) as reader:
        for _ in range(3):
            assert (await reader.get("/api/providers/binance")).status_code == 200
        assert (await reader.get("/api/providers/nope")).status_code == 404
    await asyncio.sleep(0.2)
    async with api.client(ADMIN) as admin:
        by_key = (await admin.get(f"/api/usage/keys/{created['id']}")).json()
        everything = (await admin.get("/api/usage", params={"range": "1h"})).json()
        bad = await admin.get("/api/usage", params={"range": "forever"})
        missing = await admin.get("/api/usage/keys/424242")
    assert by_key["key"]["name"] == "metrics" and by_key["key"]["usage_count"] == 4
    items = {item["route"]: item for item in by_key["items"]}
    assert items["/api/providers/{provider_id}"]["requests"] == 4
    assert items["/api/providers/{provider_id}"]["errors"] == 1
    assert everything["total"]["requests"] >= 4
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "range"]
    assert missing.status_code == 404


async def test_the_example_python_client_reads_apiwatchs_limit_headers_and_backs_off(
    api: Server,
) -> None:
    from examples import client as example

    async with api.client(ADMIN) as admin:
        created = (await admin.post("/api/keys", json={"name": "polite", "minute_limit": 2})).json()
    waits: list[float] = []
    lines: list[str] = []
    # The client is blocking (urllib); the server runs on this loop, so the client gets a thread.
    summary = await asyncio.to_thread(
        example.run,
        url=f"{api.url}/api/status",
        key=created["key"],
        requests=3,
        max_retries=1,
        sleep=waits.append,
        say=lines.append,
    )
    assert summary.ok == 2 and summary.rate_limited >= 1
    # After the 2nd request Remaining was 0: it paused until the reset before the 3rd, then
    # waited out the 429's Retry-After.
    assert summary.slowed >= 1 and len(waits) >= 2 and all(0 < w <= 60 for w in waits)
    assert any("Rate limit exceeded for minute" in line for line in lines)
