"""Burn-rate alerts through the composed monitor (`open_runtime`) on SQLite and PostgreSQL:
a known 20-minute outage in a history written straight into the database, judged with an
injected clock. The SRE workbook's conditions fire, change severity and resolve at the
moments the arithmetic says, and the notifications are routed (page → `pagerduty`, ticket →
`slack`) to a local receiver."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from sqlalchemy import insert

from apiwatch.analysis.rollups import LADDER
from apiwatch.runtime import open_runtime
from apiwatch.settings import Settings
from apiwatch.storage.models import TABLES
from apiwatch.storage.repositories import alerts as alert_repo
from apiwatch.storage.repositories import rollups
from tests.alerting.channels.receivers import HttpReceiver
from tests.conftest import empty_tables

T0 = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def history() -> list[dict]:
    """binance, one check a minute from T0 - 2 days; the 20 checks T0 .. T0+19 min fail."""
    rows, at = [], T0 - timedelta(days=2)
    while at < T0 + timedelta(hours=7):
        failed = T0 <= at < T0 + 20 * MINUTE
        rows.append(
            {
                "provider": "binance",
                "endpoint": "health",
                "outcome": "server_error" if failed else "ok",
                "latency_ms": 120.0,
                "final": True,
                "started_at": at,
            }
        )
        at += MINUTE
    return rows


async def wait_until(predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_burn_rate_alert_fires_downgrades_and_resolves_on_time(
    migrated_db_url: str, receiver: HttpReceiver, tmp_path: Path
) -> None:
    await empty_tables(migrated_db_url)
    alerts_file = tmp_path / "alerts.yaml"
    alerts_file.write_text(
        yaml.safe_dump(
            {
                "group_window_s": 0.05,
                "channels": {
                    "pagerduty": {"kind": "webhook", "url": receiver.url("/page")},
                    "slack": {"kind": "webhook", "url": receiver.url("/ticket")},
                },
            }
        )
    )
    settings = Settings(
        _env_file=None,
        database_url=migrated_db_url,
        scheduler_enabled=False,
        recorder_flush_ms=10,
        alerts_file=alerts_file,
    )
    async with open_runtime(settings) as runtime:
        async with runtime.sessions() as session, session.begin():
            await session.execute(insert(TABLES["connection_attempts"]), history())
        async with runtime.sessions() as session:
            for kind in ("check", "throttle"):
                await rollups.roll_up(
                    session,
                    kind=kind,
                    start=T0 - timedelta(days=3),
                    end=T0 + timedelta(hours=8),
                    ladder=LADDER,
                    now=T0 + timedelta(hours=8),
                )

        async def burn_alerts() -> list[dict]:
            async with runtime.sessions() as session:
                found = await alert_repo.list_alerts(session, rule="slo_burn")
            return sorted(found, key=lambda a: a["id"])

        async def judge(after: timedelta) -> None:
            await runtime.judge_burn_rates(now=T0 + after)

        # 4 failures in the last hour burn 13.3x (< 14.4): nothing; the 5th makes 16.7x
        # over 1 h and 100x over 5 min: the fast page.
        await judge(3 * MINUTE + timedelta(seconds=59))
        await judge(4 * MINUTE + timedelta(seconds=1))

        async def one_alert() -> bool:
            return len(await burn_alerts()) == 1

        await wait_until(one_alert)
        [page] = await burn_alerts()
        assert page["fired_at"] == T0 + 4 * MINUTE + timedelta(seconds=1)
        assert (page["severity"], page["provider"]) == ("critical", "binance")
        assert page["labels"]["condition"] == "page_fast"
        assert "16.7x over 1h" in page["message"]
        # 5 minutes after the outage the fast page no longer holds, but the slow one (6 h
        # at 11x, 30 min at 6.7x while the last failure is in it) keeps the page open;
        # when that failure leaves the 30-minute window only the ticket holds (3 d at 1.4x,
        # 6 h at 11x): the page resolves and a ticket fires.
        await judge(24 * MINUTE + timedelta(seconds=1))
        await judge(48 * MINUTE + timedelta(seconds=59))
        await judge(49 * MINUTE + timedelta(seconds=1))

        async def ticket_fired() -> bool:
            return any(a["severity"] == "warning" for a in await burn_alerts())

        await wait_until(ticket_fired)
        page, ticket = await burn_alerts()
        assert page["state"] == "resolved"
        assert page["resolved_at"] == T0 + 49 * MINUTE + timedelta(seconds=1)
        assert ticket["fired_at"] == T0 + 49 * MINUTE + timedelta(seconds=1)
        assert ticket["labels"]["condition"] == "ticket" and ticket["state"] == "firing"
        # Routed by severity: the page to pagerduty, the ticket to slack. Waited for before
        # the ticket resolves: an alert that fires and resolves inside one group window is
        # never notified at all, by design.
        await wait_until(lambda: _true(receiver.at("/page") and receiver.at("/ticket")))
        assert "slo_burn" in receiver.at("/page")[0].text
        assert "ticket" in receiver.at("/ticket")[0].text
        # The ticket holds while the 6-hour window has 2 failures (1.1x) and resolves when
        # it has one (0.56x): between 6h17m59s and 6h18m01s after the outage began.
        await judge(timedelta(hours=6, minutes=17, seconds=59))
        await judge(timedelta(hours=6, minutes=18, seconds=1))

        async def ticket_resolved() -> bool:
            return all(a["state"] == "resolved" for a in await burn_alerts())

        await wait_until(ticket_resolved)
        page, ticket = await burn_alerts()
        assert ticket["resolved_at"] == T0 + timedelta(hours=6, minutes=18, seconds=1)


async def _true(value: object) -> bool:
    return bool(value)
