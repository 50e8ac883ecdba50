"""The demo's faults, end to end: the composed monitor probes the simulator while faults are
injected as `make demo` does; the outages come back as incidents with their durations, and
the scorecard ranks the failing providers last."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from apiwatch.domain import utcnow
from apiwatch.runtime import open_runtime
from apiwatch.settings import Settings
from apiwatch.simulator import Scenario, Simulator

# Providers that need no key; two of them fail for a while, as in the demo's timetable.
WATCHED = ["alternative_me", "binance", "coingecko", "cryptocompare", "tronscan"]
FAULTS = {
    "binance": Scenario("down", {"status": 503}),
    "cryptocompare": Scenario("garbage", {}),
}


async def test_demo_faults_become_incidents_and_rank_the_failing_providers_last(
    tmp_path: Path,
) -> None:
    settings = Settings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}",
        scheduler_enabled=False,
        recorder_flush_ms=10,
    )
    async with Simulator(port=0) as sim:
        settings = settings.model_copy(update={"upstream_override": sim.url})
        async with open_runtime(settings) as runtime:
            began = utcnow()
            for _ in range(2):
                await runtime.check(provider_ids=WATCHED)
            for provider, scenario in FAULTS.items():
                sim.set_scenario(provider, scenario)
            for _ in range(4):
                await runtime.check(provider_ids=WATCHED)
            for provider in FAULTS:
                sim.set_scenario(provider, Scenario("healthy", {}))
            # Back online once the errors have left the status window (demo: "recovers").
            for _ in range(40):
                await runtime.check(provider_ids=WATCHED)
                if all(runtime.tracker.state(p).status.value == "online" for p in FAULTS):
                    break
            await asyncio.sleep(0.3)  # the recorder flushes every 10 ms here
            await runtime.roll_up()
            now = utcnow() + timedelta(seconds=1)
            found = await runtime.slo.incidents(
                start=began - timedelta(minutes=1), end=now, now=now
            )
            rows = await runtime.slo.scorecard(
                windows=runtime.slo.rolling_windows(timedelta(hours=1), now), label="1h", now=now
            )
    incidents = {i["provider"]: i for i in found["incidents"]}
    assert set(incidents) == set(FAULTS)
    for provider, incident in incidents.items():
        assert not incident["open"], provider
        assert incident["worst_status"] == "offline"
        assert 0 < incident["duration_s"] < 120
    assert incidents["binance"]["cause"] == "server_error"
    assert incidents["cryptocompare"]["cause"] == "invalid_payload"
    assert found["providers"]["binance"]["mttr_s"] == incidents["binance"]["duration_s"]
    ranked = [r["provider"] for r in rows if r["rank"] is not None]
    assert set(ranked) == set(WATCHED)
    assert set(ranked[-2:]) == set(FAULTS)
    failing = [r for r in rows if r["provider"] in FAULTS]
    assert all(r["incidents"] == 1 and r["uptime_pct"] < 99.5 for r in failing)
