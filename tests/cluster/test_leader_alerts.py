"""One pager across processes: two real workers share the providers, only the leader sends,
the other relays its results to it; kill the leader with -9 while a provider is down and
the outage is still paged exactly once, and resolved exactly once, by the new leader."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from apiwatch.cluster import LeaderLease
from apiwatch.settings import Settings
from apiwatch.simulator import Simulator
from apiwatch.storage.db import create_engine, create_sessionmaker
from apiwatch.storage.repositories import alerts as alert_repo
from tests.alerting.channels.receivers import HttpReceiver
from tests.cluster.processes import (
    LEASE_S,
    check_alive,
    delete_cluster_keys,
    migrate,
    set_scenario,
    start_worker,
    stop_all,
    wait_for,
    worker_env,
)
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.postgres

PROVIDER = "binance"


def pages(receiver: HttpReceiver, state: str) -> list[dict]:
    return [
        body
        for body in (r.json() for r in receiver.at("/critical"))
        if body["provider"] == PROVIDER and body["state"] == state
    ]


def describe(bodies: list[dict]) -> list[tuple]:
    return [
        (b["reason"], [(a["rule"], a.get("message"), a.get("fired_at")) for a in b["alerts"]])
        for b in bodies
    ]


@pytest.mark.slow(45)
async def test_the_leader_pages_once_and_a_new_leader_neither_repeats_nor_forgets(
    _postgres_database: str, redis_client: Any, redis_prefix: str, tmp_path: Path
) -> None:
    database_url = _postgres_database
    test_prefix = f"{redis_prefix}aw:"
    prefix = Settings(
        database_url=database_url, redis_url=REDIS_URL, redis_prefix=test_prefix
    ).cluster_prefix()
    receiver = HttpReceiver()
    await receiver.start()
    alerts = tmp_path / "alerts.yaml"
    # One critical alert for the outage: the provider offline. An SLO burn or an open breaker
    # firing a moment later would be a second page (or wait out the group interval), which
    # is grouping's business, not the leader's.
    alerts.write_text(
        "group_window_s: 1\n"
        "rules:\n"
        "  slo_burn: {enabled: false}\n"
        "  breaker_open: {enabled: false}\n"
        "  latency_anomaly: {enabled: false}\n"
        "  response_time: {enabled: false}\n"
        "  error_rate: {enabled: false}\n"
        "channels:\n"
        f"  slack: {{kind: webhook, url: '{receiver.url('/warning')}'}}\n"
        f"  pagerduty: {{kind: webhook, url: '{receiver.url('/critical')}'}}\n"
    )
    migrate(database_url)
    db = create_engine(database_url)
    sessions = create_sessionmaker(db)
    sims = {f"w{i}": Simulator() for i in range(2)}
    for sim in sims.values():
        await sim.start()
    workers: dict[str, subprocess.Popen[bytes]] = {}
    lease_view = LeaderLease(redis_client, "observer", prefix=prefix)
    try:
        for worker_id, sim in sims.items():
            env = worker_env(
                database_url, sim.url, worker_id, test_prefix, APIWATCH_ALERTS_FILE=str(alerts)
            )
            workers[worker_id] = start_worker(env)

        async def led() -> bool:
            check_alive(workers)
            return await lease_view.current() is not None

        await wait_for(led, 60, "a leader")
        await asyncio.sleep(2.0)  # both have joined and split the providers
        await set_scenario(list(sims.values()), PROVIDER, {"name": "down", "status": 503})

        async def paged() -> bool:
            check_alive(workers)
            return bool(pages(receiver, "firing"))

        await wait_for(paged, 30, f"a page for {PROVIDER} being offline")

        # Delivery is at least once: a leader killed between a delivery and storing that
        # it was sent leaves the next leader to send it again (same dedup key). Kill it once
        # the rows say sent, as a leader killed at any other moment would have done.
        async def stored_as_sent() -> bool:
            async with sessions() as session:
                rows = await alert_repo.firing_alerts(session)
            mine = [r for r in rows if r["provider"] == PROVIDER and r["severity"] == "critical"]
            return bool(mine) and all(r["sent_at"] is not None for r in mine)

        await wait_for(stored_as_sent, 30, "the page stored as sent")
        leader = (await lease_view.current()).holder
        workers[leader].send_signal(signal.SIGKILL)
        workers[leader].wait()

        async def new_leader() -> bool:
            current = await lease_view.current()
            return current is not None and current.holder != leader

        await wait_for(new_leader, LEASE_S + 3, "a new leader")
        await asyncio.sleep(4.0)  # still down under the new leader: no second page
        assert len(pages(receiver, "firing")) == 1, describe(pages(receiver, "firing"))

        await set_scenario(list(sims.values()), PROVIDER, {"name": "healthy"})

        async def resolved() -> bool:
            return bool(pages(receiver, "resolved"))

        await wait_for(resolved, 30, f"the resolve of {PROVIDER}'s page")
        await asyncio.sleep(2.0)
        assert len(pages(receiver, "firing")) == 1 and len(pages(receiver, "resolved")) == 1
    finally:
        stop_all(workers)
        for sim in sims.values():
            await sim.stop()
        await receiver.stop()
        await db.dispose()
        await delete_cluster_keys(redis_client, test_prefix)
