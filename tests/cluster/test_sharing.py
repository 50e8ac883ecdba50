"""WorkSharing, the runtime's view of the cluster: alone it owns everything and leads; with
Redis, processes split the providers, one leads, and losing Redis keeps the last view —
except the lead, which a leader that cannot renew gives up before another may take it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from apiwatch.runtime.sharing import WorkSharing
from tests.faults.servers import OwnRedis

PROVIDERS = [f"p{i}" for i in range(40)]


async def test_alone_a_process_owns_every_provider_and_leads() -> None:
    alone = WorkSharing(role="all", providers=PROVIDERS)
    assert all(alone.owns(p) for p in PROVIDERS) and alone.leading and not alone.shared
    api = WorkSharing(role="api", providers=PROVIDERS)
    assert not any(api.owns(p) for p in PROVIDERS) and api.leading
    view = await alone.view()
    assert view["leader"] == alone.id and view["shared"] is False


async def test_processes_split_the_providers_and_one_leads(redis_client, redis_prefix) -> None:
    led: list[str] = []

    def make(worker_id: str, role: Any = "worker") -> WorkSharing:
        async def on_lead() -> None:
            led.append(worker_id)

        return WorkSharing(
            role=role,
            providers=PROVIDERS,
            redis=redis_client,
            worker_id=worker_id,
            heartbeat_s=5,
            lease_s=5,
            prefix=redis_prefix,
            on_lead=on_lead,
        )

    a, b, api = make("a"), make("b"), make("api", "api")
    for _ in range(2):  # the first round joins, the second sees everybody
        for member in (a, b, api):
            await member.tick()
    assert a.owned() | b.owned() == set(PROVIDERS) and not a.owned() & b.owned()
    assert a.owned() and b.owned() and not api.owned()
    assert [m.leading for m in (a, b, api)].count(True) == 1 and led == ["a"]
    view = await api.view()
    assert view["leader"] == "a" and {m["id"] for m in view["members"]} == {"a", "b", "api"}
    assert sorted(p for m in view["members"] for p in m["providers"]) == sorted(PROVIDERS)
    await a.leave()  # a clean shutdown hands over at once
    await b.tick()
    assert b.owned() == set(PROVIDERS) and b.leading and led == ["a", "b"]


async def test_redis_gone_keeps_the_last_view(redis_prefix) -> None:
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    try:
        sharing = WorkSharing(
            role="worker", providers=PROVIDERS, redis=dead, worker_id="w", prefix=redis_prefix
        )
        await sharing.tick()  # logs once, raises nothing
        assert sharing.owned() == set() and not sharing.leading
    finally:
        await dead.aclose()


async def test_a_leader_that_cannot_renew_steps_down_before_its_lease_ends(
    tmp_path: Path,
) -> None:
    own = OwnRedis(tmp_path)
    own.start()
    client = Redis.from_url(own.url, socket_connect_timeout=0.2, socket_timeout=0.2)
    followed: list[str] = []

    async def on_follow() -> None:
        followed.append("w")

    sharing = WorkSharing(
        role="worker",
        providers=PROVIDERS,
        redis=client,
        worker_id="w",
        heartbeat_s=1,
        lease_s=2,
        on_follow=on_follow,
    )
    try:
        await sharing.tick()
        assert sharing.leading
        own.kill()
        await sharing.tick()  # a blip: still the leader
        assert sharing.leading and followed == []
        await asyncio.sleep(1.1)  # half the lease without a renewal
        await sharing.tick()
        assert not sharing.leading and followed == ["w"]
        await sharing.tick()  # said once, not on every failed tick
        assert followed == ["w"]
    finally:
        await client.aclose()
        own.stop()
