"""Schedules, compliance summaries, API keys, alerts, silences and settings overrides
against real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from apiwatch.storage.recorder import Recorder
from apiwatch.storage.repositories import alerts as alert_repo
from apiwatch.storage.repositories import api_keys as key_repo
from apiwatch.storage.repositories import data as data_repo
from apiwatch.storage.repositories import schedules as schedule_repo

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


DEFAULTS = [
    {"provider": "binance", "category": "market_data", "interval_s": 60.0, "enabled": True},
    {"provider": "newsapi", "category": "news", "interval_s": 1080.0, "enabled": True},
]


async def test_seeding_schedules_keeps_user_edits(db_sessionmaker):
    async with db_sessionmaker() as session:
        await schedule_repo.seed_schedules(session, defaults=DEFAULTS)
        rows = await schedule_repo.list_schedules(session)
        binance = next(r for r in rows if r["provider"] == "binance")
        await schedule_repo.update_schedule(session, schedule_id=binance["id"], interval_s=30)
        await schedule_repo.seed_schedules(session, defaults=DEFAULTS)
        again = await schedule_repo.list_schedules(session)
    assert len(again) == 2
    assert next(r for r in again if r["provider"] == "binance")["interval_s"] == 30
    assert next(r for r in again if r["provider"] == "newsapi")["interval_s"] == 1080.0


async def test_processes_seeding_at_once_insert_each_schedule_once(db_sessionmaker):
    # Several workers start together on one database: before ON CONFLICT DO NOTHING, each
    # read "no rows" and all but one died on the unique constraint.
    async def seed() -> None:
        async with db_sessionmaker() as session:
            await schedule_repo.seed_schedules(session, defaults=DEFAULTS)

    await asyncio.gather(*(seed() for _ in range(4)))
    async with db_sessionmaker() as session:
        rows = await schedule_repo.list_schedules(session)
    assert sorted(r["provider"] for r in rows) == ["binance", "newsapi"]


async def test_update_of_unknown_schedule_returns_none(db_sessionmaker):
    async with db_sessionmaker() as session:
        assert await schedule_repo.update_schedule(session, schedule_id=999, enabled=False) is None


async def test_compliance_summary_counts_results_and_skip_reasons(db_sessionmaker):
    recorder = Recorder(db_sessionmaker, flush_interval_s=0.01)
    await recorder.start()
    plan = [
        ("on_time", ""),
        ("on_time", ""),
        ("late", ""),
        ("skipped", "rate_limit_budget"),
        ("skipped", "rate_limit_budget"),
        ("skipped", "circuit_open"),
    ]
    for i, (result, reason) in enumerate(plan):
        recorder.record(
            (
                "schedule_compliance",
                {
                    "provider": "binance",
                    "category": "market_data",
                    "planned_at": at(i),
                    "started_at": None if result == "skipped" else at(i),
                    "lateness_ms": None if result == "skipped" else 10.0 * i,
                    "result": result,
                    "reason": reason,
                },
            )
        )
    # An old row outside the window does not count.
    recorder.record(
        (
            "schedule_compliance",
            {
                "provider": "binance",
                "category": "market_data",
                "planned_at": at(-600),
                "started_at": None,
                "lateness_ms": None,
                "result": "skipped",
                "reason": "provider_offline",
            },
        )
    )
    await recorder.stop()
    async with db_sessionmaker() as session:
        summary = await schedule_repo.compliance_summary(session, since=at(-1))
        last = await schedule_repo.last_runs(session, since=at(-1000))
    entry = summary[("binance", "market_data")]
    assert entry["planned"] == 6
    assert (entry["on_time"], entry["late"], entry["skipped"]) == (2, 1, 3)
    assert entry["compliance_pct"] == pytest.approx(33.33)
    assert entry["skip_reasons"] == {"rate_limit_budget": 2, "circuit_open": 1}
    assert last[("binance", "market_data")]["reason"] == "provider_offline"  # the newest row


async def test_latest_points_keep_exact_decimals_and_skip_news(db_sessionmaker):
    recorder = Recorder(db_sessionmaker, flush_interval_s=0.01)
    await recorder.start()
    for minute, price in ((0, "97000.10"), (1, "97000.123456789012345678")):
        recorder.record(
            (
                "data_collections",
                {
                    "provider": "coingecko",
                    "category": "market_data",
                    "item": "BTC-USD",
                    "value": Decimal(price),
                    "fetched_at": at(minute),
                },
            )
        )
    recorder.record(
        (
            "data_collections",
            {
                "provider": "newsapi",
                "category": "news",
                "item": "news:https://example.org/a",
                "text": "A headline",
                "fetched_at": at(1),
            },
        )
    )
    await recorder.stop()
    async with db_sessionmaker() as session:
        latest = await data_repo.latest_points(session, since=at(-10))
        known = await data_repo.known_items(
            session, items=["news:https://example.org/a", "news:https://example.org/b"]
        )
    assert [(p["provider"], p["item"]) for p in latest] == [("coingecko", "BTC-USD")]
    assert latest[0]["value"] == Decimal("97000.123456789012345678")
    assert known == {"news:https://example.org/a"}


async def test_api_keys_store_hash_count_usage_and_move_last_used_forward(db_sessionmaker):
    async with db_sessionmaker() as session:
        row = await key_repo.create_key(
            session, name="ci", scope="read", key_hash="a" * 64, prefix="aw_abcd", minute_limit=5
        )
        assert "key_hash" not in row and row["minute_limit"] == 5 and row["usage_count"] == 0
        await key_repo.add_usage(session, usage={row["id"]: (3, at(5))})
        await key_repo.add_usage(session, usage={row["id"]: (2, at(1))})  # a late batch
        got = await key_repo.get_key(session, key_id=row["id"])
        assert got is not None
        assert got["usage_count"] == 5 and got["last_used"] == at(5)
        changed = await key_repo.update_key(
            session, key_id=row["id"], changes={"active": False, "minute_limit": None, "x": 1}
        )
        assert changed is not None and changed["active"] is False
        assert changed["minute_limit"] is None
        hashes = await key_repo.all_with_hashes(session)
        assert hashes[0]["key_hash"] == "a" * 64
        assert await key_repo.count_keys(session, scope="admin") == 0
        assert await key_repo.delete_key(session, key_id=row["id"]) is True
        assert await key_repo.delete_key(session, key_id=row["id"]) is False


async def test_alerts_silences_and_overrides_round_trip(db_sessionmaker):
    async with db_sessionmaker() as session:
        alert_id = await alert_repo.insert_alert(
            session,
            row={
                "rule": "error_rate",
                "provider": "binance",
                "category": "market_data",
                "severity": "critical",
                "message": "error rate 50%",
                "state": "firing",
                "fingerprint": "error_rate:binance:critical",
                "fired_at": at(0),
                "decision_reason": "first_notification",
            },
        )
        await alert_repo.update_alert(
            session,
            alert_id=alert_id,
            values={"acknowledged_at": at(1), "acknowledged_by": "ops"},
        )
        firing = await alert_repo.firing_alerts(session)
        assert [a["id"] for a in firing] == [alert_id]
        assert firing[0]["acknowledged_by"] == "ops" and firing[0]["notifications"] == 0
        assert await alert_repo.list_alerts(session, severity="warning") == []
        silence = await alert_repo.create_silence(
            session,
            row={
                "matchers": {"provider": "binance"},
                "starts_at": at(0),
                "ends_at": at(60),
                "created_by": "ops",
                "comment": "maintenance",
            },
        )
        assert [s["id"] for s in await alert_repo.list_silences(session, active_at=at(30))] == [
            silence["id"]
        ]
        assert await alert_repo.list_silences(session, active_at=at(61)) == []
        # Ending a silence keeps its row (the record of maintenance) with the earlier end.
        ended = await alert_repo.end_silence(session, silence_id=silence["id"], at=at(30))
        assert ended == "ended"
        assert await alert_repo.list_silences(session, active_at=at(30)) == []
        [kept] = await alert_repo.list_silences(session)
        assert kept["ends_at"] == at(30) and kept["starts_at"] == at(0)
        again = await alert_repo.end_silence(session, silence_id=silence["id"], at=at(40))
        assert again == "already_ended"
        planned = await alert_repo.create_silence(
            session,
            row={
                "matchers": {"provider": "kraken"},
                "starts_at": at(90),
                "ends_at": at(120),
                "created_by": "ops",
                "comment": "",
            },
        )
        cancelled = await alert_repo.end_silence(session, silence_id=planned["id"], at=at(40))
        assert cancelled == "cancelled"
        assert [s["id"] for s in await alert_repo.list_silences(session)] == [silence["id"]]
        assert await alert_repo.end_silence(session, silence_id=9999, at=at(40)) == "missing"
        await alert_repo.save_override(session, name="alerts", value={"dedup_window_s": 60})
        await alert_repo.save_override(session, name="alerts", value={"dedup_window_s": 90})
        assert await alert_repo.load_override(session, name="alerts") == {"dedup_window_s": 90}


async def test_retention_deletes_old_raw_rows_and_keeps_recent_ones(db_sessionmaker):
    from apiwatch.storage.repositories import retention

    recorder = Recorder(db_sessionmaker, flush_interval_s=0.01)
    await recorder.start()
    for minutes in (-100, 10):
        recorder.record(
            (
                "events",
                {"kind": "data_stale", "provider": "binance", "data": {}, "at": at(minutes)},
            )
        )
        recorder.record(
            (
                "api_usage",
                {
                    "key_id": 1,
                    "key_name": "k",
                    "route": "/api/status",
                    "method": "GET",
                    "status": 200,
                    "latency_ms": 1.0,
                    "client": None,
                    "authorized": True,
                    "at": at(minutes),
                },
            )
        )
    await recorder.stop()
    async with db_sessionmaker() as session:
        deleted = await retention.purge(session, before=at(0))
    assert deleted["events"] == 1 and deleted["api_usage"] == 1
    assert deleted["connection_attempts"] == 0
    async with db_sessionmaker() as session:
        assert await retention.purge(session, before=at(0)) == dict.fromkeys(deleted, 0)
