"""Alerting's consumer outlives an event it cannot store (the database away or broken):
before, its error log itself raised (structlog's `event` keyword), the task died unseen,
and its queue kept every probe result from then on — the soak's memory growth."""

from __future__ import annotations

import asyncio
from pathlib import Path

from apiwatch.alerting.config import load_alert_settings
from apiwatch.alerting.manager import AlertManager
from apiwatch.domain import Status, StatusChange, utcnow
from apiwatch.storage.db import create_engine, create_sessionmaker
from apiwatch.storage.migrate import upgrade


async def test_the_consumer_keeps_draining_when_storing_an_alert_fails(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'broken.db'}"
    await upgrade(url)
    engine = create_engine(url)
    manager = AlertManager(
        sessions=create_sessionmaker(engine),
        categories={"binance": "market_data"},
        event_kinds={},
        defaults=load_alert_settings(),
    )
    await manager.start()
    # Then the alerts table goes: every alert insert fails, as during an outage.
    async with engine.begin() as connection:
        await connection.exec_driver_sql("DROP TABLE alerts")
    try:
        for provider in ("binance", "binance", "binance"):
            manager.observe(
                StatusChange(provider, Status.DEGRADED, Status.OFFLINE, "3 failures", utcnow())
            )
            await asyncio.sleep(0.3)
        assert manager._queue.qsize() == 0  # every event was taken off the queue
        assert manager._task is not None and not manager._task.done()
    finally:
        await manager.stop()
        await engine.dispose()
