"""The alert manager while SQLite is locked past its busy timeout (another connection holds
the write lock): the page is sent anyway, and once the lock is gone the alert's row is
written and marked as sent by that page, with its delivery row, so a later leader or
restart neither pages again nor forgets it."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import aiohttp

from apiwatch.alerting.config import load_alert_settings
from apiwatch.alerting.manager import AlertManager
from apiwatch.storage.db import create_engine, create_sessionmaker
from apiwatch.storage.migrate import upgrade
from apiwatch.storage.repositories import alerts as alert_repo
from tests.alerting.channels.receivers import HttpReceiver
from tests.alerting.test_manager import offline


async def test_a_page_sent_while_the_database_was_locked_is_stored_as_sent(
    tmp_path: Path,
) -> None:
    path = tmp_path / "locked.db"
    url = f"sqlite+aiosqlite:///{path}"
    await upgrade(url)
    engine = create_engine(url)
    sessions = create_sessionmaker(engine)
    receiver = HttpReceiver()
    await receiver.start()
    http = aiohttp.ClientSession()
    manager = AlertManager(
        sessions=sessions,
        categories={"binance": "market_data"},
        event_kinds={},
        defaults=load_alert_settings(
            patch={
                "group_window_s": 0.1,
                "channels": {"pagerduty": {"kind": "webhook", "url": receiver.url("/page")}},
            }
        ),
        http=http,
    )
    await manager.start()
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # the write lock, for longer than the 5 s timeout
        manager.observe(offline())
        deadline = time.monotonic() + 30
        while not receiver.at("/page"):
            assert time.monotonic() < deadline, "the page was not sent while locked"
            await asyncio.sleep(0.05)
        await asyncio.sleep(6)  # past the busy timeout: the row's write failed and waits
        assert len(manager.writes) >= 1
        holder.execute("ROLLBACK")

        async def stored() -> list[dict]:
            async with sessions() as session:
                return await alert_repo.firing_alerts(session)

        deadline = time.monotonic() + 30
        while not ((rows := await stored()) and rows[0]["sent_at"] is not None):
            assert time.monotonic() < deadline, f"not stored as sent: {rows}"
            await asyncio.sleep(0.1)
        assert len(rows) == 1 and rows[0]["notifications"] == 1
        async with sessions() as session:
            deliveries = await alert_repo.list_deliveries(session, limit=10)
        assert [(d["channel"], d["delivered"], d["alert_ids"]) for d in deliveries] == [
            ("pagerduty", True, [rows[0]["id"]])
        ]
        assert len(manager.writes) == 0
    finally:
        holder.close()
        await manager.stop()
        await http.close()
        await receiver.stop()
        await engine.dispose()
