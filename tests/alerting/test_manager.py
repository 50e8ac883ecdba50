"""The alert manager with its real parts: a status change becomes a stored alert and a
delivered notification, with the LLM's incident report when it answers in time and the
rule-based one when it does not; every delivery is stored."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import aiohttp
import pytest

from apiwatch.alerting.config import load_alert_settings
from apiwatch.alerting.manager import AlertManager
from apiwatch.domain import Status, StatusChange, utcnow
from apiwatch.storage.repositories import alerts as alert_repo
from tests.alerting.channels.receivers import HttpReceiver
from tests.alerting.test_llm import KEY, REPORT, FakeLLM


@pytest.fixture
async def receiver() -> AsyncIterator[HttpReceiver]:
    server = HttpReceiver()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def start_manager(
    db_sessionmaker, receiver: HttpReceiver, llm_url: str, timeout_s: float, accepts=None
):
    settings = load_alert_settings(
        patch={
            "group_window_s": 0.1,
            "channels": {"pagerduty": {"kind": "webhook", "url": receiver.url("/page")}},
            "llm": {"url": llm_url, "model": "test-model", "timeout_s": timeout_s},
        }
    )
    http = aiohttp.ClientSession()
    manager = AlertManager(
        sessions=db_sessionmaker,
        categories={"binance": "market_data"},
        event_kinds={},
        defaults=settings,
        llm_key=KEY,
        http=http,
    )
    if accepts is not None:
        manager.accepts = accepts
    await manager.start()
    return manager, http


@asynccontextmanager
async def running_manager(
    db_sessionmaker, receiver: HttpReceiver, llm_url: str, timeout_s: float, accepts=None
) -> AsyncIterator[AlertManager]:
    """`start_manager`, stopped (and its HTTP session closed) on the way out."""
    manager, http = await start_manager(db_sessionmaker, receiver, llm_url, timeout_s, accepts)
    try:
        yield manager
    finally:
        await manager.stop()
        await http.close()


async def page_once(
    db_sessionmaker, receiver: HttpReceiver, llm_url: str, *, timeout_s: float
) -> None:
    """A manager pages for binance going offline and stops, its alert still firing."""
    async with running_manager(db_sessionmaker, receiver, llm_url, timeout_s) as manager:
        manager.observe(offline())
        await wait_for(lambda: receiver.at("/page"))


def offline(provider: str = "binance") -> StatusChange:
    return StatusChange(
        provider, Status.DEGRADED, Status.OFFLINE, "3 consecutive failures", utcnow()
    )


async def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_the_llm_report_rides_along_when_it_answers_in_time(
    db_sessionmaker, receiver: HttpReceiver, llm: FakeLLM
) -> None:
    await page_once(db_sessionmaker, receiver, llm.url, timeout_s=5)
    body = receiver.at("/page")[0].json()
    assert REPORT in body["report"] and "rule-based triage" in body["report"]
    assert llm.requests[0]["headers"]["Authorization"] == f"Bearer {KEY}"
    async with db_sessionmaker() as session:
        stored = await alert_repo.list_alerts(session, provider="binance")
        deliveries = await alert_repo.list_deliveries(session)
    assert stored[0]["report"] == body["report"] and stored[0]["notifications"] == 1
    assert [(d["channel"], d["delivered"]) for d in deliveries] == [("pagerduty", True)]


async def test_a_slow_llm_never_holds_the_page_back_past_its_timeout(
    db_sessionmaker, receiver: HttpReceiver, llm: FakeLLM
) -> None:
    llm.mode = "slow"
    manager, http = await start_manager(db_sessionmaker, receiver, llm.url, timeout_s=0.3)
    try:
        start = time.monotonic()
        manager.observe(offline())
        await wait_for(lambda: receiver.at("/page"), timeout=5)
        elapsed = time.monotonic() - start
    finally:
        llm.release.set()
        await manager.stop()
        await http.close()
    body = receiver.at("/page")[0].json()
    assert REPORT not in body["report"] and body["report"]  # the rule-based report stands
    assert elapsed < 3


async def test_a_failed_delivery_is_stored_with_its_error(
    db_sessionmaker, receiver: HttpReceiver, llm: FakeLLM
) -> None:
    receiver.script("/page", 400)
    async with running_manager(db_sessionmaker, receiver, llm.url, 1) as manager:
        manager.observe(offline())
        await wait_for(lambda: receiver.at("/page"))
        await asyncio.sleep(0.3)
    async with db_sessionmaker() as session:
        deliveries = await alert_repo.list_deliveries(session)
    assert len(deliveries) == 1
    failed = deliveries[0]
    assert failed["delivered"] is False and failed["retryable"] is False
    assert "400" in failed["error"] and failed["attempts"] == 1


async def test_an_alert_firing_before_a_restart_resolves_when_its_condition_clears(
    db_sessionmaker, receiver: HttpReceiver, llm: FakeLLM
) -> None:
    await page_once(db_sessionmaker, receiver, llm.url, timeout_s=1)
    async with running_manager(db_sessionmaker, receiver, llm.url, 1) as manager:
        manager.observe(StatusChange("binance", Status.OFFLINE, Status.ONLINE, "healthy", utcnow()))
        await wait_for(lambda: len(receiver.at("/page")) == 2)
    assert receiver.at("/page")[1].json()["state"] == "resolved"
    async with db_sessionmaker() as session:
        stored = await alert_repo.list_alerts(session, provider="binance")
    assert [(a["state"], a["resolved_at"] is not None) for a in stored] == [("resolved", True)]


async def test_a_silence_ended_in_one_process_stops_muting_in_another(
    db_sessionmaker, receiver: HttpReceiver
) -> None:
    # Two processes share the database; ending a silence keeps its row (the SLO's record of
    # maintenance), so the other one must notice the earlier end, not only a missing row.
    one, http_one = await start_manager(db_sessionmaker, receiver, receiver.url("/llm"), 1)
    two, http_two = await start_manager(db_sessionmaker, receiver, receiver.url("/llm"), 1)
    try:
        now = utcnow()
        silence = await one.create_silence(
            matchers={"provider": "binance"},
            starts_at=now,
            ends_at=now + timedelta(hours=1),
            created_by="ops",
            comment="maintenance",
        )
        assert await two.sync_from_store() == 1
        assert two.policy.silences.get(silence["id"]) is not None
        assert await one.end_silence(silence["id"]) == "ended"
        assert one.policy.silences.get(silence["id"]) is None
        assert await two.sync_from_store() == 1
        assert two.policy.silences.get(silence["id"]) is None
        assert await two.sync_from_store() == 0  # the ended row is not picked up again
        [listed] = await two.list_silences()
        assert listed["active"] is False and listed["ends_at"] <= utcnow()
        assert await two.end_silence(silence["id"]) == "already_ended"
    finally:
        for manager, http in ((one, http_one), (two, http_two)):
            await manager.stop()
            await http.close()


async def test_an_alert_restored_for_a_provider_no_longer_monitored_is_resolved_at_start(
    db_sessionmaker, receiver: HttpReceiver, llm: FakeLLM
) -> None:
    """Deleted or disabled while no process was leading (or in a file across a restart):
    its alert comes back from storage, and nothing but the start would resolve it."""
    await page_once(db_sessionmaker, receiver, llm.url, timeout_s=1)
    gone = lambda provider: provider != "binance"  # noqa: E731
    async with running_manager(db_sessionmaker, receiver, llm.url, 1, accepts=gone) as manager:
        await wait_for(lambda: len(receiver.at("/page")) == 2)
        assert manager.policy.active() == []
        assert manager.notices_for(offline()) == []  # its late results are dropped
        assert manager.notices_for(offline("coingecko"))  # others' are not
    assert receiver.at("/page")[1].json()["state"] == "resolved"
    async with db_sessionmaker() as session:
        stored = await alert_repo.list_alerts(session, provider="binance")
    assert [a["state"] for a in stored] == ["resolved"]
