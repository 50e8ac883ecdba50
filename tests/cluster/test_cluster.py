"""Cluster membership, rendezvous assignment and the leader lease, against the real Redis."""

from __future__ import annotations

import asyncio
from collections import Counter

from apiwatch.cluster import LeaderLease, Membership, owner, share
from tests.conftest import connect_redis

PROVIDERS = [f"provider-{i}" for i in range(300)]


def test_every_provider_has_exactly_one_owner_and_shares_are_balanced() -> None:
    workers = ["w1", "w2", "w3"]
    shares = {w: share(w, PROVIDERS, workers) for w in workers}
    assert set().union(*shares.values()) == set(PROVIDERS)
    assert sum(len(s) for s in shares.values()) == len(PROVIDERS)  # no overlap
    # 300 over 3: each within a third of the fair share.
    assert all(66 <= len(s) <= 134 for s in shares.values()), {w: len(s) for w, s in shares.items()}


def test_losing_a_worker_moves_only_its_share() -> None:
    before = {p: owner(p, ["w1", "w2", "w3"]) for p in PROVIDERS}
    after = {p: owner(p, ["w1", "w3"]) for p in PROVIDERS}
    moved = {p for p in PROVIDERS if before[p] != after[p]}
    assert moved == {p for p in PROVIDERS if before[p] == "w2"}
    assert Counter(after.values()).keys() == {"w1", "w3"}


def test_adding_a_worker_takes_only_from_the_others_what_it_now_owns() -> None:
    before = {p: owner(p, ["w1", "w2"]) for p in PROVIDERS}
    after = {p: owner(p, ["w1", "w2", "w3"]) for p in PROVIDERS}
    assert {p for p in PROVIDERS if before[p] != after[p]} == {
        p for p in PROVIDERS if after[p] == "w3"
    }
    assert owner("x", []) is None and share("w9", PROVIDERS, ["w1"]) == set()


async def test_members_appear_on_beat_and_expire_after_the_heartbeat(redis_client, redis_prefix):
    a = Membership(redis_client, "a", role="worker", heartbeat_s=0.4, prefix=redis_prefix)
    b = Membership(redis_client, "b", role="api", heartbeat_s=0.4, prefix=redis_prefix)
    await a.beat()
    await b.beat()
    assert [m.id for m in await a.members()] == ["a", "b"]
    assert await a.workers() == ["a"]  # the api role probes nothing
    await asyncio.sleep(0.25)
    await a.beat()  # a keeps beating, b has stopped
    await asyncio.sleep(0.3)
    assert [m.id for m in await a.members()] == ["a"]
    await a.leave()
    assert await b.members() == []


async def test_a_foreign_key_under_the_prefix_is_not_a_member(redis_client, redis_prefix):
    await redis_client.set(f"{redis_prefix}member:junk", b"not json")
    m = Membership(redis_client, "w", prefix=redis_prefix)
    await m.beat()
    assert [x.id for x in await m.members()] == ["w"]


async def test_one_leader_at_a_time_even_under_contention(redis_client, redis_prefix):
    clients = [await connect_redis() for _ in range(8)]
    try:
        leases = [
            LeaderLease(c, f"p{i}", ttl_s=5, prefix=redis_prefix) for i, c in enumerate(clients)
        ]
        won = await asyncio.gather(*(lease.acquire_or_renew() for lease in leases))
        assert sum(won) == 1
        leader = leases[won.index(True)]
        assert (await leader.current()).holder == leader.holder
        assert await leader.acquire_or_renew() and await leader.still_ours()
        assert not any(
            await asyncio.gather(*(x.acquire_or_renew() for x in leases if x is not leader))
        )
    finally:
        for c in clients:
            await c.aclose()


async def test_an_expired_lease_passes_on_with_a_larger_token(redis_client, redis_prefix):
    old = LeaderLease(redis_client, "old", ttl_s=0.3, prefix=redis_prefix)
    new = LeaderLease(redis_client, "new", ttl_s=0.3, prefix=redis_prefix)
    assert await old.acquire_or_renew()
    assert not await new.acquire_or_renew()
    await asyncio.sleep(0.45)  # old stopped renewing (killed, hung)
    assert await new.acquire_or_renew()
    assert new.token > old.token
    assert not await old.still_ours()  # fenced: old must not act as leader any more
    assert not await old.acquire_or_renew() and not old.leading
    await old.release()  # releasing a lease we no longer hold leaves the new one alone
    assert (await new.current()).holder == "new"
    await new.release()
    assert await new.current() is None
