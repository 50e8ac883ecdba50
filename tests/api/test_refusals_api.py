"""`GET /api/usage/refusals` over real HTTP on SQLite and PostgreSQL: every kind of refusal
the key middleware makes is counted under its reason, first from memory (the current
minute), then from `api_refusals` once stored, with the same figures."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import websockets
from sqlalchemy import func, select

from apiwatch.settings import Settings
from apiwatch.storage.models import ApiRefusal
from tests.api.test_api import serve
from tests.conftest import empty_tables

ADMIN = "aw_refusal-tests-admin-key-000000000000000"

# What the client saw → the reason the refusal must be counted under.
DETAILS = {
    (401, "Missing API key"): "missing_key",
    (401, "Invalid API key"): "invalid_key",
    (403, "API key is inactive"): "inactive_key",
    (403, "Admin API key required"): "admin_required",
}


def reason_of(response: httpx.Response) -> str | None:
    """The refusal reason a response shows, None when it was not refused."""
    if response.status_code < 400:
        return None
    detail = response.json()["detail"]
    if response.status_code == 429:
        if detail.startswith("Too many failed API key attempts"):
            return "failed_auth_throttled"
        window = detail.removeprefix("Rate limit exceeded for ").split(".")[0]
        return f"rate_limited_{window}"
    return DETAILS[response.status_code, detail]


@pytest.fixture
async def monitor(migrated_db_url: str) -> AsyncIterator[tuple[str, Any]]:
    await empty_tables(migrated_db_url)
    settings = Settings(
        _env_file=None,
        database_url=migrated_db_url,
        recorder_flush_ms=10,
        admin_key=ADMIN,
        failed_auth_per_minute=3,
    )
    server, task, port = await serve(settings)
    try:
        yield f"http://127.0.0.1:{port}", server.config.app.state.runtime
    finally:
        server.should_exit = True
        await task


def client(url: str, key: str | None = None, address: str = "127.0.0.1") -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=url,
        headers={} if key is None else {"X-API-Key": key},
        transport=httpx.AsyncHTTPTransport(local_address=address),
        timeout=30,
    )


async def refuse_every_way(url: str) -> Counter[str]:
    """Make each kind of refusal happen; what the clients saw, by reason."""
    responses: list[httpx.Response] = []
    async with client(url, ADMIN) as admin:
        made = {}
        for name, limits in (
            ("reader", {}),
            ("retired", {}),
            ("per-minute", {"minute_limit": 1}),
            ("per-hour", {"hour_limit": 1}),
            ("per-day", {"day_limit": 1}),
        ):
            response = await admin.post("/api/keys", json={"name": name, **limits})
            assert response.status_code == 201, response.text
            made[name] = response.json()["key"]
        retired_id = next(
            k["id"] for k in (await admin.get("/api/keys")).json()["keys"] if k["name"] == "retired"
        )
        assert (await admin.patch(f"/api/keys/{retired_id}", json={"active": False})).is_success
    async with client(url) as anonymous:
        responses += [await anonymous.get("/api/status") for _ in range(2)]
    async with client(url, "aw_not-a-key") as stranger:
        responses += [await stranger.get("/api/providers") for _ in range(2)]
    async with client(url, made["retired"]) as retired:
        responses.append(await retired.get("/api/status"))
    async with client(url, made["reader"]) as reader:
        responses += [await reader.get("/api/keys") for _ in range(2)]
    for name in ("per-minute", "per-hour", "per-day"):
        async with client(url, made[name]) as limited:
            # Three, so a window that rolls over during the test still refuses one.
            responses += [await limited.get("/api/status") for _ in range(3)]
    # Another address: three failed keys are allowed a minute, then it is throttled.
    async with client(url, "aw_guessing", address="127.0.0.2") as guesser:
        responses += [await guesser.get("/api/status") for _ in range(6)]
    return Counter(reason for r in responses if (reason := reason_of(r)) is not None)


async def read(url: str, **params: str) -> dict[str, Any]:
    async with client(url, ADMIN) as admin:
        response = await admin.get("/api/usage/refusals", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def by_reason(body: dict[str, Any]) -> dict[str, int]:
    return {item["reason"]: item["count"] for item in body["by_reason"]}


async def test_each_kind_of_refusal_is_counted_under_its_reason(monitor: tuple) -> None:
    url, runtime = monitor
    seen = await refuse_every_way(url)
    assert set(seen) == {
        "missing_key",
        "invalid_key",
        "inactive_key",
        "admin_required",
        "rate_limited_minute",
        "rate_limited_hour",
        "rate_limited_day",
        "failed_auth_throttled",
    }
    # Refused by the throttle after three failures from 127.0.0.2 (unless its minute ended).
    assert seen["failed_auth_throttled"] >= 1

    # Straight away: the current minute is read from memory.
    live = await read(url, range="1h")
    assert by_reason(live) == dict(seen)
    assert live["total"] == sum(seen.values())
    statuses = {item["reason"]: item["status"] for item in live["by_reason"]}
    assert statuses == {
        "missing_key": 401,
        "invalid_key": 401,
        "inactive_key": 403,
        "admin_required": 403,
        "rate_limited_minute": 429,
        "rate_limited_hour": 429,
        "rate_limited_day": 429,
        "failed_auth_throttled": 429,
    }
    assert live["bucket"] == "minute"  # 1 h: per minute
    assert sum(point["count"] for point in live["series"]) == live["total"]
    assert {point["reason"] for point in live["series"]} == set(seen)
    assert live["networks"] == [{"client_prefix": "127.0.0.0/24", "count": live["total"]}]

    # Stored: the same figures come back from the table, per reason.
    assert runtime.access.flush_refusals(everything=True) >= len(seen)
    assert await runtime.recorder.flush(max_wait_s=10)
    async with runtime.sessions() as session:
        stored = dict(
            (
                await session.execute(
                    select(ApiRefusal.reason, func.sum(ApiRefusal.count)).group_by(
                        ApiRefusal.reason
                    )
                )
            ).all()
        )
    assert {reason: int(count) for reason, count in stored.items()} == dict(seen)
    again = await read(url, range="1h")
    assert by_reason(again) == dict(seen)
    hourly = await read(url, range="24h", bucket="hour")
    assert by_reason(hourly) == dict(seen)
    assert hourly["bucket"] == "hour"
    hours = {point["t"] for point in hourly["series"]}
    now = datetime.now(UTC)
    assert all(datetime.fromisoformat(t).minute == 0 for t in hours)
    assert len(hours) <= 2  # this hour (and the last, if it just turned)
    assert max(datetime.fromisoformat(t) for t in hours) <= now


async def test_refusals_are_for_admins_and_bad_ranges_get_4xx(monitor: tuple) -> None:
    url, _runtime = monitor
    async with client(url, ADMIN) as admin:
        reader_key = (await admin.post("/api/keys", json={"name": "r"})).json()["key"]
        too_fine = await admin.get(
            "/api/usage/refusals", params={"range": "7d", "bucket": "minute"}
        )
        unknown = await admin.get("/api/usage/refusals", params={"bucket": "second"})
        backwards = await admin.get(
            "/api/usage/refusals",
            params={"since": "2026-12-02T00:00:00Z", "until": "2026-12-01T00:00:00Z"},
        )
        empty = await admin.get("/api/usage/refusals", params={"range": "7d"})
    async with client(url, reader_key) as reader:
        forbidden = await reader.get("/api/usage/refusals")
    assert forbidden.status_code == 403
    assert forbidden.json() == {"detail": "Admin API key required"}
    assert too_fine.status_code == 400 and "bucket=hour" in too_fine.json()["detail"]
    assert unknown.status_code == 422
    assert backwards.status_code == 400 and "until" in backwards.json()["detail"]
    assert empty.status_code == 200
    assert empty.json()["bucket"] == "hour"  # 7 d: per hour
    assert empty.json()["total"] == 0  # read before the read key was refused
    await asyncio.sleep(0.05)  # a refusal is counted just after its response is sent
    after = await read(url, range="1h")
    assert by_reason(after) == {"admin_required": 1}


async def test_refused_live_feed_handshakes_are_counted_like_requests(monitor: tuple) -> None:
    url, _runtime = monitor
    ws = url.replace("http://", "ws://") + "/ws/live"
    for target in (ws, f"{ws}?api_key=aw_not-a-key"):
        async with websockets.connect(target) as socket:
            with pytest.raises(websockets.ConnectionClosed):
                await socket.recv()
            assert socket.close_code == 4401
    live = await read(url, range="1h")
    assert by_reason(live) == {"missing_key": 1, "invalid_key": 1}
    assert {item["reason"]: item["status"] for item in live["by_reason"]} == {
        "missing_key": 401,
        "invalid_key": 401,
    }
