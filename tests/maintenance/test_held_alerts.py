"""Alerts held by a maintenance window through the real alert manager: stored with the reason
`maintenance`, sent nowhere while the window lasts, and notified as usual once it has ended
if they still fire."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta

import aiohttp

from apiwatch.alerting.config import load_alert_settings
from apiwatch.alerting.maintenance import MaintenanceWindow
from apiwatch.alerting.manager import AlertManager
from apiwatch.domain import Status, utcnow
from apiwatch.storage.repositories import alerts as alert_repo
from tests.alerting.channels.receivers import HttpReceiver
from tests.alerting.test_manager import offline, wait_for


class Clock:
    """Real time, moved on by `skip` (the batches' group windows still pass)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    @property
    def now(self) -> datetime:
        return utcnow() + self.offset

    def skip(self, span: timedelta) -> None:
        self.offset += span

    def __call__(self) -> datetime:
        return self.now


async def manager_with(db_sessionmaker, receiver: HttpReceiver, clock: Clock, **extra):
    settings = load_alert_settings(
        patch={
            "group_window_s": 0.1,
            "channels": {"pagerduty": {"kind": "webhook", "url": receiver.url("/page")}},
        }
    )
    http = aiohttp.ClientSession()
    manager = AlertManager(
        sessions=db_sessionmaker,
        categories={"binance": "market_data"},
        event_kinds={},
        defaults=settings,
        http=http,
        clock=clock,
        **extra,
    )
    await manager.start()
    return manager, http


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def reasons(db_sessionmaker) -> set[str]:
    async with db_sessionmaker() as session:
        stored = await alert_repo.list_alerts(session, provider="binance")
    return {row["decision_reason"] for row in stored}


async def test_an_alert_in_a_window_is_held_with_reason_maintenance_then_sent_when_it_ends(
    db_sessionmaker, receiver: HttpReceiver
) -> None:
    clock = Clock()
    manager, http = await manager_with(db_sessionmaker, receiver, clock)
    try:
        created = await manager.create_maintenance(
            {
                "title": "Binance upgrade",
                "matchers": {"provider": "binance"},
                "starts_at": clock.now - timedelta(minutes=1),
                "duration_s": 3600,
            },
            by="test",
        )
        assert created["active"] is True and created["source"] == "api"
        manager.observe(offline())

        async def held() -> bool:
            return await reasons(db_sessionmaker) == {"maintenance"}

        await until(held)
        # Several flushes pass while the window lasts: nothing is sent.
        flushes = [await manager.flush() for _ in range(3)]
        assert flushes == [[], [], []] and receiver.at("/page") == []
        clock.skip(timedelta(hours=1))  # the window is over; the alert still fires
        await wait_for(lambda: receiver.at("/page"))
    finally:
        await manager.stop()
        await http.close()
    body = receiver.at("/page")[0].json()
    assert "binance" in str(body)
    assert body["reason"] == "first_notification"


async def test_a_file_window_holds_and_a_resolve_inside_it_sends_nothing(
    db_sessionmaker, receiver: HttpReceiver
) -> None:
    clock = Clock()
    window = MaintenanceWindow(
        id="file:nightly",
        title="Nightly",
        matchers={"category": "market_*"},
        source="file",
        recurrence={"every": "daily", "at": clock.now.strftime("%H:%M")},
        duration_s=3600,
    )
    manager, http = await manager_with(db_sessionmaker, receiver, clock, maintenance=[window])
    try:
        assert manager.maintenance.get("file:nightly") is window
        change = offline()
        for notice in manager.notices_for(change):
            await manager.submit(notice)
        assert await reasons(db_sessionmaker) == {"maintenance"}
        back = replace(change, old=Status.OFFLINE, new=Status.ONLINE, reason="recovered")
        for notice in manager.notices_for(back):
            await manager.submit(notice)
        clock.skip(timedelta(hours=2))
        assert await manager.flush(force=True) == []
    finally:
        await manager.stop()
        await http.close()
    assert receiver.at("/page") == []
    assert await reasons(db_sessionmaker) == {"maintenance"}


async def test_a_window_created_in_one_process_holds_alerts_in_the_leader(
    db_sessionmaker, receiver: HttpReceiver
) -> None:
    # Two processes share the database: the API of one creates the window, the leader picks
    # it up with its periodic sync and holds the alert.
    clock = Clock()
    api, http_api = await manager_with(db_sessionmaker, receiver, clock)
    leader, http_leader = await manager_with(db_sessionmaker, receiver, clock)
    try:
        created = await api.create_maintenance(
            {
                "title": "Upgrade",
                "matchers": {"provider": "binance"},
                "starts_at": clock.now - timedelta(seconds=1),
                "duration_s": 600,
            },
            by="ops",
        )
        assert leader.maintenance.get(created["id"]) is None
        assert await leader.sync_from_store() == 1
        assert await leader.sync_from_store() == 0
        for notice in leader.notices_for(offline()):
            await leader.submit(notice)
        assert await reasons(db_sessionmaker) == {"maintenance"}
        assert await leader.flush(force=True) == []
    finally:
        await api.abandon()
        await leader.abandon()
        await http_api.close()
        await http_leader.close()
    assert receiver.at("/page") == []
