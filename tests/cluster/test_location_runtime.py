"""Locations in one composed monitor (real SQLite, the simulator): results are stamped and
stored with the process's location, and a process taking the lead records the combined
status no leader recorded."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from apiwatch.catalogue.loader import load_catalogue
from apiwatch.cluster import Membership
from apiwatch.domain import Outcome, ProbeResult, Status, utcnow
from apiwatch.runtime import open_runtime
from apiwatch.runtime.locations import reconcile
from apiwatch.settings import Settings
from apiwatch.simulator import Scenario, Simulator
from apiwatch.storage.models import ConnectionAttempt
from apiwatch.storage.repositories import status_changes
from tests.conftest import REDIS_URL


def settings_for(tmp_path: Path, sim: Simulator, **extra: object) -> Settings:
    return Settings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'loc.db'}",
        upstream_override=sim.url,
        scheduler_enabled=False,
        **extra,
    )


async def test_results_are_stored_with_the_location_and_judged_under_it(tmp_path: Path) -> None:
    async with (
        Simulator(port=0) as sim,
        open_runtime(settings_for(tmp_path, sim, location="eu")) as runtime,
    ):
        seen: list[object] = []
        runtime.bus.add_listener(seen.append)
        await runtime.check(provider_ids=["binance"])
        published = [e for e in seen if isinstance(e, ProbeResult)]
        assert published and {r.location for r in published} == {"eu"}
        assert runtime.tracker.locations("binance") == {"eu": (Status.ONLINE, "healthy")}
        state = runtime.tracker.state("binance")
        assert (state.status, state.reason) == (Status.ONLINE, "healthy")  # one location
        assert await runtime.recorder.flush()
        async with runtime.sessions() as session:
            stored = set(
                await session.scalars(
                    select(ConnectionAttempt.location).where(
                        ConnectionAttempt.provider == "binance"
                    )
                )
            )
            latest = await status_changes.latest_status(session)
        assert stored == {"eu"}
        assert latest["binance"]["status"] == "online"


async def test_taking_the_lead_records_a_combined_status_nobody_recorded(tmp_path: Path) -> None:
    async with Simulator(port=0) as sim, open_runtime(settings_for(tmp_path, sim)) as runtime:
        runtime.tracker.expected = lambda provider: ("eu", "us")
        start = utcnow()
        for second in range(3):  # judged, as a follower judges, without recording
            for location, outcome in (("eu", Outcome.TIMEOUT), ("us", Outcome.OK)):
                runtime.tracker.observe(
                    ProbeResult(
                        "binance",
                        "health",
                        outcome,
                        start + timedelta(seconds=second),
                        location=location,
                    )
                )
        assert runtime.tracker.state("binance").status is Status.DEGRADED
        changes = await reconcile(runtime)
        assert [(c.provider, c.old, c.new) for c in changes] == [
            ("binance", Status.UNKNOWN, Status.DEGRADED)
        ]
        assert await runtime.recorder.flush()
        async with runtime.sessions() as session:
            latest = await status_changes.latest_status(session)
        assert latest["binance"]["status"] == "degraded"
        assert latest["binance"]["reason"].startswith("offline from eu (1 of 2 locations")
        assert await reconcile(runtime) == []  # stored now: nothing more to record


async def test_the_live_locations_the_catalogue_lists_make_up_the_status(
    tmp_path: Path, redis_client: Any, redis_prefix: str
) -> None:
    """A process in eu, in a cluster on the real Redis where a worker in us is a member:
    binance, listed for eu and us, counts us (no results yet) until that worker leaves."""
    ours = load_catalogue().sources["binance"].read_text()
    user = tmp_path / "catalogue"
    user.mkdir()
    (user / "binance.yaml").write_text(ours.rstrip("\n") + "\nlocations: [eu, us]\n")
    (user / "bybit.yaml").write_text(  # listed for ap only: eu does not count it
        load_catalogue().sources["bybit"].read_text().rstrip("\n") + "\nlocations: [ap]\n"
    )
    settings = dict(
        location="eu",
        catalogue_dir=user,
        redis_url=REDIS_URL,
        redis_prefix=f"{redis_prefix}aw:",
        live_redis_channel=f"{redis_prefix}live",
    )
    async with (
        Simulator(port=0) as sim,
        open_runtime(settings_for(tmp_path, sim, **settings)) as runtime,
    ):
        us = Membership(
            redis_client,
            "us-1",
            location="us",
            heartbeat_s=60,
            prefix=runtime.settings.cluster_prefix(),
        )
        await us.beat()
        await runtime.sharing.tick()
        assert runtime.sharing.locations == ["eu", "us"] and runtime.sharing.leading
        assert runtime.sharing.owns("binance") and not runtime.sharing.owned() & {"bybit"}

        await runtime.check(provider_ids=["binance"])
        assert runtime.tracker.locations("binance") == {
            "eu": (Status.ONLINE, "healthy"),
            "us": (Status.UNKNOWN, "no results yet"),
        }
        assert runtime.tracker.state("binance").status is Status.ONLINE
        sim.set_scenario("binance", Scenario("down", {"status": 503}))
        for _ in range(3):
            await runtime.check(provider_ids=["binance"])
        state = runtime.tracker.state("binance")
        # One of the two listed locations is not a majority: degraded, eu named.
        assert state.status is Status.DEGRADED
        assert state.reason.startswith("offline from eu (1 of 2 locations, 2 needed)")

        # The us worker leaves: eu alone judges binance, and its offline is the provider's.
        await us.leave()
        await runtime.sharing.tick()
        assert runtime.sharing.locations == ["eu"]
        await runtime.check(provider_ids=["binance"])
        state = runtime.tracker.state("binance")
        assert state.status is Status.OFFLINE
        assert "consecutive failures" in state.reason and "locations" not in state.reason
