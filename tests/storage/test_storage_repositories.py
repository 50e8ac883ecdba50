"""Repository queries against known data on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert

from apiwatch.domain import Outcome, ProbeResult, Status, StatusChange
from apiwatch.storage.models import TABLES
from apiwatch.storage.recorder_rows import probe_result_row, status_change_row
from apiwatch.storage.repositories import attempts, providers, status_changes

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def probe(provider: str, outcome: Outcome, minute: float, **extra) -> ProbeResult:
    return ProbeResult(
        provider=provider, endpoint="health", outcome=outcome, started_at=at(minute), **extra
    )


async def insert_rows(sessionmaker, table: str, rows: list[dict]) -> None:
    async with sessionmaker() as session, session.begin():
        await session.execute(insert(TABLES[table]), rows)


async def insert_probes(sessionmaker, results: list[ProbeResult]) -> None:
    await insert_rows(sessionmaker, "connection_attempts", [probe_result_row(r) for r in results])


# Known data: minute 0 is outside every window below (since=at(1)).
PROBES = [
    probe("binance", Outcome.OK, 0),  # before the window
    probe("binance", Outcome.OK, 1),
    probe("binance", Outcome.SLOW, 2),
    probe("binance", Outcome.TIMEOUT, 3, reason="no response in 10s"),
    probe("binance", Outcome.SKIPPED, 4, reason="rate_limit_budget"),
    probe("etherscan", Outcome.SERVER_ERROR, 5, status_code=503),
    probe("etherscan", Outcome.SERVER_ERROR, 6, status_code=502),
    probe("etherscan", Outcome.RATE_LIMITED, 7, status_code=429),
    probe("etherscan", Outcome.OK, 8, status_code=200),
    probe("newsapi", Outcome.SKIPPED, 9, reason="no_key"),
]


@pytest.fixture
async def seeded(db_sessionmaker):
    await insert_probes(db_sessionmaker, PROBES)
    return db_sessionmaker


async def test_sync_providers_inserts_then_updates_by_id(db_sessionmaker):
    async with db_sessionmaker() as session:
        await providers.sync_providers(
            session,
            providers=[
                {
                    "id": "coingecko",
                    "name": "CoinGecko",
                    "category": "market_data",
                    "base_url": "https://api.coingecko.com",
                    "auth": {"ignored": True},
                },
                {
                    "id": "binance",
                    "name": "Binance",
                    "category": "market_data",
                    "base_url": "https://api.binance.com",
                },
            ],
        )
        await providers.sync_providers(
            session,
            providers=[
                {
                    "id": "coingecko",
                    "name": "CoinGecko Pro",
                    "category": "market_data",
                    "base_url": "https://pro-api.coingecko.com",
                    "enabled": False,
                },
            ],
        )
    async with db_sessionmaker() as session:
        listed = await providers.list_providers(session)

    assert [p["id"] for p in listed] == ["binance", "coingecko"]
    coingecko = listed[1]
    assert coingecko["name"] == "CoinGecko Pro"
    assert coingecko["base_url"] == "https://pro-api.coingecko.com"
    assert coingecko["enabled"] is False
    assert coingecko["updated_at"].tzinfo is not None
    assert listed[0]["enabled"] is True


async def test_list_attempts_is_newest_first_with_total_for_pagination(seeded):
    async with seeded() as session:
        page1, total = await attempts.list_attempts(session, limit=4)
        page3, total3 = await attempts.list_attempts(session, limit=4, offset=8)
    assert total == total3 == len(PROBES)
    assert [r["started_at"] for r in page1] == [at(9), at(8), at(7), at(6)]
    assert [r["started_at"] for r in page3] == [at(1), at(0)]
    first = page1[0]
    assert first["provider"] == "newsapi"
    assert first["outcome"] == "skipped"
    assert first["reason"] == "no_key"
    assert set(first) >= {"id", "endpoint", "status_code", "latency_ms", "attempt", "key_label"}


async def test_list_attempts_filters_by_provider_outcome_and_time(seeded):
    async with seeded() as session:
        etherscan, n_etherscan = await attempts.list_attempts(session, provider="etherscan")
        errors, n_errors = await attempts.list_attempts(session, outcome=Outcome.SERVER_ERROR)
        window, n_window = await attempts.list_attempts(session, since=at(2), until=at(5))
        none, n_none = await attempts.list_attempts(
            session, provider="binance", outcome="ok", since=at(5)
        )
    assert n_etherscan == 4 and {r["provider"] for r in etherscan} == {"etherscan"}
    assert n_errors == 2 and [r["status_code"] for r in errors] == [502, 503]
    # since inclusive, until exclusive
    assert n_window == 3 and [r["started_at"] for r in window] == [at(4), at(3), at(2)]
    assert (none, n_none) == ([], 0)


async def test_uptime_counts_ok_and_slow_as_up_and_leaves_skipped_out(seeded):
    async with seeded() as session:
        result = await attempts.uptime(session, since=at(1))
    # binance: ok, slow, timeout (+ skipped, excluded) -> 2 of 3
    assert result["binance"]["total"] == 3
    assert result["binance"]["successes"] == 2
    assert result["binance"]["uptime_pct"] == pytest.approx(200 / 3)
    # etherscan: 2 server errors, rate limited, ok -> 1 of 4
    assert result["etherscan"] == {"total": 4, "successes": 1, "uptime_pct": 25.0}
    # newsapi was only skipped: nothing to judge
    assert result["newsapi"] == {"total": 0, "successes": 0, "uptime_pct": None}


async def test_uptime_ignores_attempts_before_since(seeded):
    async with seeded() as session:
        result = await attempts.uptime(session, since=at(8))
    assert set(result) == {"etherscan", "newsapi"}
    assert result["etherscan"] == {"total": 1, "successes": 1, "uptime_pct": 100.0}


async def test_failure_summary_counts_failures_and_rate_limits_per_outcome_and_provider(seeded):
    async with seeded() as session:
        summary = await attempts.failure_summary(session, since=at(1), recent_limit=3)

    by_outcome = summary["by_outcome"]
    assert by_outcome["server_error"] == 2
    assert by_outcome["timeout"] == 1
    assert by_outcome["rate_limited"] == 1
    assert by_outcome["auth_error"] == 0
    assert "skipped" not in by_outcome and "ok" not in by_outcome and "slow" not in by_outcome
    assert next(iter(by_outcome)) == "server_error"  # most frequent first
    assert summary["total_failures"] == 4

    assert summary["top_providers"] == [
        {"provider": "etherscan", "failures": 3, "total": 4, "failure_rate": 0.75},
        {"provider": "binance", "failures": 1, "total": 3, "failure_rate": pytest.approx(1 / 3)},
    ]
    assert [(r["provider"], r["outcome"], r["started_at"]) for r in summary["recent"]] == [
        ("etherscan", "rate_limited", at(7)),
        ("etherscan", "server_error", at(6)),
        ("etherscan", "server_error", at(5)),
    ]


async def test_failure_summary_of_a_quiet_window_is_empty(seeded):
    async with seeded() as session:
        summary = await attempts.failure_summary(session, since=at(8))
    assert summary["total_failures"] == 0
    assert summary["top_providers"] == []
    assert summary["recent"] == []


async def test_top_providers_are_capped_at_ten_most_failing(db_sessionmaker):
    results = [
        probe(f"p{n:02d}", Outcome.TIMEOUT, minute)
        for n in range(12)
        for minute in range(n + 1)  # p11 fails most
    ]
    await insert_probes(db_sessionmaker, results)
    async with db_sessionmaker() as session:
        top = (await attempts.failure_summary(session, since=T0))["top_providers"]
    assert [p["provider"] for p in top] == [f"p{n:02d}" for n in range(11, 1, -1)]


async def test_last_check_time_is_the_newest_start_or_none(db_sessionmaker):
    async with db_sessionmaker() as session:
        assert await attempts.last_check_time(session) is None
    await insert_probes(db_sessionmaker, PROBES)
    async with db_sessionmaker() as session:
        latest = await attempts.last_check_time(session)
    assert latest == at(9)
    assert latest.tzinfo is not None


async def test_list_changes_is_newest_first_and_filters_by_provider(db_sessionmaker):
    changes = [
        StatusChange("binance", Status.UNKNOWN, Status.ONLINE, "first result", at(0)),
        StatusChange("etherscan", Status.UNKNOWN, Status.ONLINE, "first result", at(1)),
        StatusChange("binance", Status.ONLINE, Status.DEGRADED, "slow", at(2)),
    ]
    await insert_rows(db_sessionmaker, "status_changes", [status_change_row(c) for c in changes])
    async with db_sessionmaker() as session:
        everything = await status_changes.list_changes(session)
        binance = await status_changes.list_changes(session, provider="binance", limit=1)
    assert [(c["provider"], c["new_status"]) for c in everything] == [
        ("binance", "degraded"),
        ("etherscan", "online"),
        ("binance", "online"),
    ]
    assert len(binance) == 1
    assert binance[0]["old_status"] == "online"
    assert binance[0]["reason"] == "slow"
    assert binance[0]["changed_at"] == at(2)


async def test_latest_status_restores_each_providers_newest_change(db_sessionmaker):
    changes = [
        StatusChange("binance", Status.UNKNOWN, Status.ONLINE, "first result", at(0)),
        StatusChange("binance", Status.ONLINE, Status.OFFLINE, "3 consecutive failures", at(5)),
        StatusChange("etherscan", Status.UNKNOWN, Status.DEGRADED, "slow", at(1)),
        # Two changes in the same instant: the later-recorded one wins.
        StatusChange("newsapi", Status.UNKNOWN, Status.ONLINE, "first result", at(3)),
        StatusChange("newsapi", Status.ONLINE, Status.DEGRADED, "stale data", at(3)),
    ]
    await insert_rows(db_sessionmaker, "status_changes", [status_change_row(c) for c in changes])
    async with db_sessionmaker() as session:
        latest = await status_changes.latest_status(session)
    assert latest == {
        "binance": {"status": "offline", "reason": "3 consecutive failures", "changed_at": at(5)},
        "etherscan": {"status": "degraded", "reason": "slow", "changed_at": at(1)},
        "newsapi": {"status": "degraded", "reason": "stale data", "changed_at": at(3)},
    }
