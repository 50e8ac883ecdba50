"""Work shared by real worker processes on the real PostgreSQL and Redis: every provider is
probed by exactly one worker, a worker killed with -9 has its providers taken over within
two heartbeats, and the leader lease passes on when its holder dies. An API process that
probes nothing serves `GET /api/cluster`, which shows the same members, shares and leader.

Each worker gets a simulator of its own (APIWATCH_UPSTREAM_OVERRIDE), so the simulators'
request counts say which worker probed which provider.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
from typing import Any

import httpx
import pytest

from apiwatch.catalogue.loader import load_catalogue
from apiwatch.cluster import LeaderLease, Membership, share
from apiwatch.settings import Settings
from apiwatch.simulator import Simulator
from tests.cluster.processes import (
    ADMIN_KEY,
    HEALTH_S,
    HEARTBEAT_S,
    LEASE_S,
    check_alive,
    delete_cluster_keys,
    migrate,
    requests_by_provider,
    start_serving,
    start_worker,
    stop_all,
    sustains,
    wait_for,
    worker_env,
)
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.postgres


def probed_since(before: dict[str, int], after: dict[str, int]) -> set[str]:
    return {p for p, n in after.items() if n > before.get(p, 0)}


async def cluster_view(api: str) -> dict[str, Any]:
    async with httpx.AsyncClient(headers={"X-API-Key": ADMIN_KEY}, timeout=10) as client:
        answer = await client.get(f"{api}/api/cluster")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def shares_shown(view: dict[str, Any]) -> dict[str, set[str]]:
    return {m["id"]: set(m["providers"]) for m in view["members"] if m["role"] == "worker"}


@pytest.mark.slow(16)
async def test_workers_share_providers_take_over_and_pass_the_lease(
    _postgres_database: str, redis_client: Any, redis_prefix: str
) -> None:
    redis_test_prefix = redis_prefix
    database_url = _postgres_database
    redis_prefix = f"{redis_test_prefix}aw:"
    prefix = Settings(
        database_url=database_url, redis_url=REDIS_URL, redis_prefix=redis_prefix
    ).cluster_prefix()
    catalogue = load_catalogue().enabled()
    all_ids = [spec.id for spec in catalogue]
    # Which providers are probed every half second for the two minutes this runs: the
    # others (60 or 30 a minute, 100 a day) are rightly held back by their budgets at times.
    steady = {spec.id for spec in catalogue if sustains(spec, 1 / HEALTH_S, 120)}
    migrate(database_url)
    sims = {f"w{i}": Simulator() for i in range(3)}
    for sim in sims.values():
        await sim.start()
    workers: dict[str, subprocess.Popen[bytes]] = {}
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for worker_id, sim in sims.items():
            workers[worker_id] = start_worker(
                worker_env(database_url, sim.url, worker_id, redis_prefix)
            )
        view = Membership(redis_client, "observer", prefix=prefix)

        async def all_joined() -> bool:
            check_alive(workers)
            return await view.workers() == sorted(workers)

        await wait_for(all_joined, 60, "three workers registered")
        await asyncio.sleep(2 * HEARTBEAT_S)  # every worker has seen the others
        # One API process besides: it joins the cluster, probes nothing, and shows it.
        processes["api"], api = await start_serving(
            worker_env(database_url, sims["w0"].url, "api", redis_prefix), "api"
        )

        # Steady state: each provider goes to exactly one worker's simulator.
        before = {w: await requests_by_provider(s) for w, s in sims.items()}
        await asyncio.sleep(4 * HEALTH_S)
        after = {w: await requests_by_provider(s) for w, s in sims.items()}
        probed = {w: probed_since(before[w], after[w]) for w in sims}
        owners = {w: share(w, all_ids, sorted(sims)) for w in sims}
        assert all(owners.values()), owners  # every worker has a share

        # GET /api/cluster over HTTP says the same: three workers, their shares, the
        # leader; the API process is a member with no providers.
        view = await cluster_view(api)
        assert shares_shown(view) == owners, view
        roles = {m["id"]: m["role"] for m in view["members"]}
        assert roles == {**dict.fromkeys(sims, "worker"), "api": "api"}
        assert [m["providers"] for m in view["members"] if m["id"] == "api"] == [[]]
        assert view["shared"] is True and view["role"] == "api" and view["self"] == "api"
        for w in sims:  # each worker probes its own share and nothing else
            assert probed[w] <= owners[w], (w, probed[w] - owners[w])
            assert owners[w] & steady <= probed[w], (w, owners[w] & steady - probed[w])

        # Kill the leader with -9; its providers move to the others, and so does the lease.
        lease = await LeaderLease(redis_client, "observer", prefix=prefix).current()
        assert lease is not None and lease.holder in workers
        victim = lease.holder
        orphaned = owners[victim] & steady
        workers[victim].send_signal(signal.SIGKILL)
        workers[victim].wait()
        killed_at = {w: await requests_by_provider(s) for w, s in sims.items() if w != victim}

        async def taken_over() -> bool:
            now = {w: await requests_by_provider(sims[w]) for w in killed_at}
            seen = set().union(*(probed_since(killed_at[w], now[w]) for w in killed_at))
            return orphaned <= seen

        took = await wait_for(taken_over, 10, "the dead worker's providers probed again")
        assert took <= 2 * HEARTBEAT_S + HEALTH_S + 0.5, f"take-over in {took:.2f} s"

        async def new_leader() -> bool:
            current = await LeaderLease(redis_client, "observer", prefix=prefix).current()
            return current is not None and current.holder != victim

        await wait_for(new_leader, LEASE_S + HEARTBEAT_S + 1, "a new leader")
        current = await LeaderLease(redis_client, "observer", prefix=prefix).current()
        assert current.token > lease.token
        # ...and the API process shows the two survivors and the new leader.
        survivors = {w: share(w, all_ids, sorted(killed_at)) for w in killed_at}

        async def api_shows_survivors() -> bool:
            check_alive(processes)
            return shares_shown(await cluster_view(api)) == survivors

        await wait_for(api_shows_survivors, 2 * HEARTBEAT_S + 1, "/api/cluster without it")
        view = await cluster_view(api)
        assert view["leader"] == current.holder and view["leader_token"] == current.token

        # After the hand-over: still each provider once, now over two workers.
        before = {w: await requests_by_provider(sims[w]) for w in killed_at}
        await asyncio.sleep(4 * HEALTH_S)
        after = {w: await requests_by_provider(sims[w]) for w in killed_at}
        probed = {w: probed_since(before[w], after[w]) for w in killed_at}
        owners = {w: share(w, all_ids, sorted(killed_at)) for w in killed_at}
        assert set().union(*owners.values()) == set(all_ids)
        for w in killed_at:
            assert probed[w] <= owners[w], (w, probed[w] - owners[w])
            assert owners[w] & steady <= probed[w], (w, owners[w] & steady - probed[w])
    finally:
        stop_all({**workers, **processes})
        for sim in sims.values():
            await sim.stop()
        await delete_cluster_keys(redis_client, redis_prefix)
