"""Probing from several locations with real processes on the real PostgreSQL and Redis: a
worker in `eu` and one in `us`, each probing through a simulator of its own (so each
location can be made to see its own outage), and an API process that probes nothing.

One location failing makes the provider `degraded` with that location named; both failing
make it `offline`; every status change is recorded once (by the leader), results carry and
show their location, and each location probes every provider.
"""

from __future__ import annotations

import itertools
import subprocess
from typing import Any

import httpx
import pytest

from apiwatch.domain import utcnow
from apiwatch.settings import Settings
from apiwatch.simulator import Simulator
from apiwatch.storage.db import create_engine, create_sessionmaker
from apiwatch.storage.repositories import status_changes
from tests.cluster.processes import (
    ADMIN_KEY,
    check_alive,
    delete_cluster_keys,
    migrate,
    set_scenario,
    start_serving,
    start_worker,
    stop_all,
    wait_for,
    worker_env,
)
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.postgres

PROVIDER = "binance"
LOCATIONS = ("eu", "us")


async def test_two_locations_disagreeing_give_degraded_and_agreeing_give_offline(
    _postgres_database: str, redis_client: Any, redis_prefix: str
) -> None:
    database_url = _postgres_database
    test_prefix = f"{redis_prefix}aw:"
    cluster = Settings(
        database_url=database_url, redis_url=REDIS_URL, redis_prefix=test_prefix
    ).cluster_prefix()
    migrate(database_url)
    sims = {location: Simulator() for location in LOCATIONS}
    for sim in sims.values():
        await sim.start()
    processes: dict[str, subprocess.Popen[bytes]] = {}
    client = httpx.AsyncClient(headers={"X-API-Key": ADMIN_KEY}, timeout=10)
    db = create_engine(database_url)
    sessions = create_sessionmaker(db)
    shared = {
        # The feed relay under the test's own channel: other tests' results stay out.
        "APIWATCH_LIVE_REDIS_CHANNEL": f"{test_prefix}live",
        # Two locations probe each provider: half as often keeps it inside its budget.
        "APIWATCH_HEALTH_INTERVAL_S": "1.0",
    }
    try:
        for location, sim in sims.items():
            env = worker_env(
                database_url,
                sim.url,
                f"w-{location}",
                test_prefix,
                APIWATCH_LOCATION=location,
                **shared,
            )
            processes[f"w-{location}"] = start_worker(env)
        # The test asks the API every tenth of a second: above a key's default limits.
        limits = {f"APIWATCH_API_LIMIT_PER_{span}": "1000000" for span in ("MINUTE", "HOUR", "DAY")}
        api_env = worker_env(database_url, sims["eu"].url, "api", test_prefix, **shared, **limits)
        processes["api"], api = await start_serving(api_env, "api")
        client.base_url = httpx.URL(api)

        async def provider() -> dict[str, Any]:
            check_alive(processes)
            answer = await client.get(f"/api/providers/{PROVIDER}")
            assert answer.status_code == 200, answer.text
            return dict(answer.json())

        async def status_is(wanted: str) -> bool:
            return (await provider())["status"] == wanted

        # Online as soon as one location has judged it (the other counts as unknown, never
        # as failing), so both workers' presence is waited for on its own.
        await wait_for(lambda: status_is("online"), 60, f"{PROVIDER} online")

        async def workers() -> dict[str, Any]:
            view = (await client.get("/api/cluster")).json()
            return {m["id"]: m for m in view["members"] if m["role"] == "worker"}

        async def both_workers_joined() -> bool:
            return {m["location"] for m in (await workers()).values()} == set(LOCATIONS)

        await wait_for(both_workers_joined, 60, "a worker of each location in the cluster view")
        # The cluster view: each location's one worker owns every provider.
        members = await workers()
        assert all(PROVIDER in m["providers"] for m in members.values()), members

        # Results carry their location, stored and shown.
        async def both_locations_logged() -> bool:
            page = (await client.get("/api/logs", params={"provider": PROVIDER})).json()
            return {item["location"] for item in page["items"]} == set(LOCATIONS)

        await wait_for(both_locations_logged, 30, "attempts from both locations in the log")

        # Only eu sees the provider fail: degraded, and the reason says where.
        failing_from = utcnow()
        await set_scenario([sims["eu"]], PROVIDER, {"name": "down", "status": 503})
        await wait_for(lambda: status_is("degraded"), 30, f"{PROVIDER} degraded")
        await wait_for(
            lambda: _reason_has(provider, "offline from eu (1 of 2 locations"),
            30,
            "the degraded reason naming eu",
        )
        detail = await provider()
        assert "us" not in detail["reason"].split(";")[0], detail["reason"]
        per_location = {loc["location"]: loc["status"] for loc in detail["locations"]}
        assert set(per_location) == set(LOCATIONS) and per_location["eu"] == "offline"
        assert per_location["us"] != "offline", per_location

        # Both see it fail: offline.
        await set_scenario([sims["us"]], PROVIDER, {"name": "down", "status": 503})
        await wait_for(lambda: status_is("offline"), 30, f"{PROVIDER} offline")
        reason = (await provider())["reason"]
        assert reason.startswith("offline from eu, us (2 of 2 locations)"), reason

        # Each change was recorded once (by the leader), not once per location.
        news: list[str] = []

        async def offline_stored() -> bool:
            async with sessions() as session:
                rows = await status_changes.list_changes(session, provider=PROVIDER, limit=50)
            news[:] = [r["new_status"] for r in reversed(rows) if r["changed_at"] >= failing_from]
            return bool(news) and news[-1] == "offline"

        await wait_for(offline_stored, 15, "the offline change stored")
        assert news[0] == "degraded", news
        assert all(a != b for a, b in itertools.pairwise(news)), news
    finally:
        await client.aclose()
        stop_all(processes)
        for sim in sims.values():
            await sim.stop()
        await db.dispose()
        await delete_cluster_keys(redis_client, test_prefix)
        await delete_cluster_keys(redis_client, cluster)


async def _reason_has(provider: Any, text: str) -> bool:
    return text in (await provider())["reason"]
