"""The composed monitor: a restart keeps statuses, shutdown loses no results."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import func, select

from apiwatch.domain import Status
from apiwatch.runtime import open_runtime
from apiwatch.settings import Settings
from apiwatch.simulator import Scenario, Simulator
from apiwatch.storage.models import ConnectionAttempt, StatusChangeRow


def settings_for(url: str, sim: Simulator, **extra: object) -> Settings:
    return Settings(
        _env_file=None,
        database_url=url,
        upstream_override=sim.url,
        scheduler_enabled=False,
        recorder_flush_ms=5000,  # nothing flushes by time: shutdown must flush
        **extra,
    )


async def test_restart_restores_offline_status_and_flushes_every_attempt(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'rt.db'}"
    async with Simulator(port=0) as sim:
        sim.set_scenario("binance", Scenario("down", {"status": 503}))
        async with open_runtime(settings_for(url, sim)) as runtime:
            for _ in range(3):
                await runtime.check(provider_ids=["binance"])
            assert runtime.tracker.state("binance").status is Status.OFFLINE
            assert runtime.recorder.written == 0  # still queued: flush interval not reached
        async with open_runtime(settings_for(url, sim)) as runtime:
            state = runtime.tracker.state("binance")
            assert state.status is Status.OFFLINE
            assert state.reason.startswith("restored: 3 consecutive failures")
            async with runtime.sessions() as session:
                attempts = await session.scalar(select(func.count(ConnectionAttempt.id)))
                changes = await session.scalar(select(func.count(StatusChangeRow.id)))
            assert attempts == 3
            assert changes == 2  # unknown → degraded → offline


async def test_scheduler_runs_health_checks_of_every_enabled_provider(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'sched.db'}"
    async with Simulator(port=0) as sim:
        settings = settings_for(url, sim, health_interval_s=0.2).model_copy(
            update={"scheduler_enabled": True}
        )
        async with open_runtime(settings) as runtime:
            enabled = {spec.id for spec in runtime.catalogue.enabled()}
            jobs = runtime.scheduler.jobs()
            assert set(jobs) == {f"health:{pid}" for pid in enabled}
            await asyncio.sleep(1.0)
            runs = {name: job.runs for name, job in jobs.items()}
        assert all(count >= 2 for count in runs.values()), runs
        keyless = {spec.id for spec in runtime.catalogue.enabled() if not spec.auth.required}
        probed = {pid for pid, seen in sim.stats()["providers"].items() if seen["requests"]}
        assert keyless <= probed
