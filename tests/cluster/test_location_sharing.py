"""Work shared per location (real Redis): within a location each provider has one worker,
across locations every location probes it, and a provider whose catalogue entry lists
locations is probed only there."""

from __future__ import annotations

from apiwatch.runtime.sharing import WorkSharing

PROVIDERS = [f"p{i}" for i in range(30)]
# p0 is probed from us only; p1 from eu only.
PLACEMENT = {"p0": ["us"], "p1": ["eu"]}


async def test_each_location_probes_every_provider_once(redis_client, redis_prefix) -> None:
    def make(worker_id: str, location: str) -> WorkSharing:
        return WorkSharing(
            role="worker",
            providers=PROVIDERS,
            redis=redis_client,
            worker_id=worker_id,
            location=location,
            heartbeat_s=5,
            lease_s=5,
            prefix=redis_prefix,
            placement=lambda pid: PLACEMENT.get(pid, ()),
        )

    eu1, eu2, us = make("eu-1", "eu"), make("eu-2", "eu"), make("us-1", "us")
    try:
        for _ in range(2):  # the first round joins, the second sees everybody
            for member in (eu1, eu2, us):
                await member.tick()
        everything_but = set(PROVIDERS)
        assert eu1.owned() | eu2.owned() == everything_but - {"p0"}
        assert not eu1.owned() & eu2.owned() and eu1.owned() and eu2.owned()
        assert us.owned() == everything_but - {"p1"}
        assert eu1.locations == us.locations == ["eu", "us"]

        view = await us.view()
        shown = {m["id"]: (m["location"], set(m["providers"])) for m in view["members"]}
        assert shown == {
            "eu-1": ("eu", eu1.owned()),
            "eu-2": ("eu", eu2.owned()),
            "us-1": ("us", us.owned()),
        }

        # eu-2 leaves: eu-1 takes eu's whole share; us is untouched.
        before = us.owned()
        await eu2.leave()
        await eu1.tick()
        await us.tick()
        assert eu1.owned() == everything_but - {"p0"} and us.owned() == before
    finally:
        for member in (eu1, eu2, us):
            await member.leave()
