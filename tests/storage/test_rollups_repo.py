"""Hourly roll-ups and the chart queries over them, on SQLite and PostgreSQL, against known
raw rows: exact counts, histograms and percentiles, the live hour, idempotent re-runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, insert, select

from apiwatch.analysis.rollups import (
    LADDER,
    bucket_index,
    is_api_error,
    is_probe_error,
    is_probe_request,
)
from apiwatch.domain import Outcome
from apiwatch.storage.models import TABLES
from apiwatch.storage.repositories import charts, rollups

H0 = datetime(2025, 3, 1, 10, tzinfo=UTC)
H1 = H0 + timedelta(hours=1)
H2 = H0 + timedelta(hours=2)
MIN = timedelta(minutes=1)
ATTEMPTS = TABLES["connection_attempts"]
USAGE = TABLES["api_usage"]
ROLLUPS = TABLES["hourly_rollups"]


def attempt(
    provider: str, outcome: Outcome, at: datetime, latency: float | None, *, final: bool = True
) -> dict[str, Any]:
    return {
        "provider": provider,
        "endpoint": "health",
        "outcome": outcome.value,
        "status_code": None,
        "latency_ms": latency,
        "reason": "",
        "attempt": 1,
        "final": final,
        "started_at": at,
    }


def usage(key_id: int | None, route: str, status: int, latency: float, at: datetime) -> dict:
    return {
        "key_id": key_id,
        "key_name": None if key_id is None else f"key{key_id}",
        "route": route,
        "method": "GET",
        "status": status,
        "latency_ms": latency,
        "client": "127.0.0.1",
        "authorized": status not in (401, 403),
        "at": at,
    }


# binance, hour H0: five requests sent (one of them a retried timeout), two errors, one
# skipped probe that was never sent. Sorted latencies 50, 100, 200, 900, 10000.
BINANCE_H0 = [
    attempt("binance", Outcome.OK, H0 + 1 * MIN, 100.0),
    attempt("binance", Outcome.OK, H0 + 2 * MIN, 200.0),
    attempt("binance", Outcome.SLOW, H0 + 3 * MIN, 900.0),
    attempt("binance", Outcome.TIMEOUT, H0 + 4 * MIN, 10_000.0, final=False),
    attempt("binance", Outcome.SERVER_ERROR, H0 + 5 * MIN, 50.0),
    attempt("binance", Outcome.SKIPPED, H0 + 6 * MIN, None),
]
BINANCE_H1 = [attempt("binance", Outcome.OK, H1 + i * MIN, 20.0) for i in range(4)]
ETHERSCAN_H0 = [
    attempt("etherscan", Outcome.RATE_LIMITED, H0 + 59 * MIN, 30.0),
    attempt("etherscan", Outcome.OK, H0 + 7 * MIN, 40.0),
]


async def insert_rows(sessions, table, rows: list[dict]) -> None:
    async with sessions() as session, session.begin():
        await session.execute(insert(table), rows)


async def stored(sessions, kind: str = "probe") -> dict[tuple[str, str, datetime], dict]:
    async with sessions() as session:
        result = await session.execute(select(ROLLUPS).where(ROLLUPS.c.kind == kind))
        return {(r.subject, r.detail, r.hour): dict(r._mapping) for r in result}


async def roll(sessions, kind: str = "probe", start=H0, end=H2, now=H2 + 10 * MIN) -> int:
    async with sessions() as session:
        return await rollups.roll_up(
            session, kind=kind, start=start, end=end, ladder=LADDER, now=now
        )


def hist_of(*latencies: float) -> list[int]:
    return LADDER.histogram(latencies)


async def test_roll_up_writes_one_row_per_provider_and_hour_with_exact_figures(
    db_sessionmaker,
) -> None:
    await insert_rows(db_sessionmaker, ATTEMPTS, BINANCE_H0 + BINANCE_H1 + ETHERSCAN_H0)
    assert await roll(db_sessionmaker) == 3
    rows = await stored(db_sessionmaker)
    assert set(rows) == {("binance", "", H0), ("binance", "", H1), ("etherscan", "", H0)}

    b0 = rows[("binance", "", H0)]
    assert (b0["count"], b0["errors"]) == (5, 2)
    assert b0["latency_ms_sum"] == pytest.approx(11_250.0)
    assert b0["latency_hist"] == hist_of(100, 200, 900, 10_000, 50)
    # p50 is the 3rd of 5 (200 ms, alone in (150, 200]); p95 the 5th (alone in (7500, 10000]).
    assert b0["p50_ms"] == pytest.approx(200.0)
    assert b0["p95_ms"] == pytest.approx(10_000.0)
    assert b0["updated_at"] == H2 + 10 * MIN

    b1 = rows[("binance", "", H1)]
    assert (b1["count"], b1["errors"], b1["latency_hist"]) == (4, 0, hist_of(20, 20, 20, 20))
    e0 = rows[("etherscan", "", H0)]
    assert (e0["count"], e0["errors"]) == (2, 1)


@pytest.mark.parametrize("at_once", [1, 2, 1000])
async def test_roll_ups_written_a_slice_at_a_time_are_all_written(
    db_sessionmaker, monkeypatch: pytest.MonkeyPatch, at_once: int
) -> None:
    """Slices of one, of two (the last one short) and one slice for all: the same rows."""
    monkeypatch.setattr(rollups, "ROWS_AT_ONCE", at_once)
    await insert_rows(db_sessionmaker, ATTEMPTS, BINANCE_H0 + BINANCE_H1 + ETHERSCAN_H0)
    assert await roll(db_sessionmaker) == 3
    rows = await stored(db_sessionmaker)
    assert set(rows) == {("binance", "", H0), ("binance", "", H1), ("etherscan", "", H0)}
    assert [rows[k]["count"] for k in sorted(rows)] == [5, 4, 2]
    assert rows[("binance", "", H0)]["latency_hist"] == hist_of(100, 200, 900, 10_000, 50)


async def test_roll_up_rerun_is_idempotent_and_picks_up_late_rows(db_sessionmaker) -> None:
    await insert_rows(db_sessionmaker, ATTEMPTS, BINANCE_H0)
    await roll(db_sessionmaker)
    first = await stored(db_sessionmaker)
    await roll(db_sessionmaker)
    again = await stored(db_sessionmaker)
    assert {k: (v["count"], v["latency_hist"], v["id"]) for k, v in again.items()} == {
        k: (v["count"], v["latency_hist"], v["id"]) for k, v in first.items()
    }

    await insert_rows(db_sessionmaker, ATTEMPTS, [attempt("binance", Outcome.OK, H0, 3.0)])
    await roll(db_sessionmaker)
    late = (await stored(db_sessionmaker))[("binance", "", H0)]
    assert late["count"] == 6
    assert late["latency_hist"][bucket_index(3.0)] == 1
    assert late["id"] == first[("binance", "", H0)]["id"]


async def test_roll_up_counts_outcomes_exactly_as_the_analysis_rules_say(db_sessionmaker) -> None:
    rows = [attempt("coingecko", o, H0 + i * MIN, 10.0) for i, o in enumerate(Outcome)]
    await insert_rows(db_sessionmaker, ATTEMPTS, rows)
    await roll(db_sessionmaker)
    row = (await stored(db_sessionmaker))[("coingecko", "", H0)]
    sent = [o.value for o in Outcome if is_probe_request(o.value)]
    assert row["count"] == len(sent)
    assert row["errors"] == sum(is_probe_error(o) for o in sent)


async def test_roll_up_keeps_hours_whose_raw_rows_retention_deleted(db_sessionmaker) -> None:
    await insert_rows(db_sessionmaker, ATTEMPTS, BINANCE_H0)
    await roll(db_sessionmaker)
    async with db_sessionmaker() as session, session.begin():
        await session.execute(delete(ATTEMPTS))
    await roll(db_sessionmaker)
    assert (await stored(db_sessionmaker))[("binance", "", H0)]["count"] == 5


async def test_roll_up_recent_covers_only_the_current_and_previous_hour(db_sessionmaker) -> None:
    old = attempt("binance", Outcome.OK, H0 - timedelta(hours=2), 10.0)
    await insert_rows(db_sessionmaker, ATTEMPTS, [old, *BINANCE_H0, *BINANCE_H1])
    async with db_sessionmaker() as session:
        written = await rollups.roll_up_recent(
            session, kind="probe", now=H1 + 30 * MIN, ladder=LADDER
        )
    assert written == 2
    assert set(await stored(db_sessionmaker)) == {("binance", "", H0), ("binance", "", H1)}


async def test_api_roll_up_groups_by_key_and_route_and_counts_4xx_5xx_as_errors(
    db_sessionmaker,
) -> None:
    statuses = [200, 200, 404, 500]
    rows = [usage(7, "/api/status", s, 2.0 + i, H0 + i * MIN) for i, s in enumerate(statuses)]
    rows += [usage(None, "/api/status", 401, 0.5, H0 + 5 * MIN)]
    rows += [usage(7, "/api/logs", 200, 30.0, H0 + 6 * MIN)]
    await insert_rows(db_sessionmaker, USAGE, rows)
    assert await roll(db_sessionmaker, kind="api") == 3
    got = await stored(db_sessionmaker, "api")
    status7 = got[("7", "/api/status", H0)]
    assert (status7["count"], status7["errors"]) == (4, sum(map(is_api_error, statuses)))
    assert status7["latency_hist"] == hist_of(2, 3, 4, 5)
    anonymous = got[("-", "/api/status", H0)]
    assert (anonymous["count"], anonymous["errors"]) == (1, 1)
    assert got[("7", "/api/logs", H0)]["count"] == 1


async def test_health_history_reads_settled_hours_from_roll_ups_and_the_current_hour_live(
    db_sessionmaker,
) -> None:
    await insert_rows(db_sessionmaker, ATTEMPTS, BINANCE_H0 + BINANCE_H1 + ETHERSCAN_H0)
    await roll(db_sessionmaker, now=H2 + 5 * MIN)
    # Retention removed the raw rows of the rolled hours: they must come from roll-ups.
    async with db_sessionmaker() as session, session.begin():
        await session.execute(delete(ATTEMPTS))
    current = [
        attempt("binance", Outcome.OK, H2 + 10 * MIN, 300.0),
        attempt("binance", Outcome.AUTH_ERROR, H2 + 11 * MIN, 80.0),
    ]
    await insert_rows(db_sessionmaker, ATTEMPTS, current)

    async with db_sessionmaker() as session:
        points = await charts.health_history(
            session,
            start=H0,
            end=H2 + 20 * MIN,
            bucket=timedelta(hours=1),
            providers=None,
            now=H2 + 20 * MIN,
            ladder=LADDER,
        )
    by_key = {(p["provider"], p["bucket_start"]): p for p in points}
    assert list(by_key) == [
        ("binance", H0),
        ("binance", H1),
        ("binance", H2),
        ("etherscan", H0),
    ]
    b0 = by_key[("binance", H0)]
    assert (b0["requests"], b0["errors"], b0["success_rate"]) == (5, 2, 0.6)
    assert (b0["p50_ms"], b0["p95_ms"]) == (200.0, 10_000.0)
    assert by_key[("binance", H1)]["success_rate"] == 1.0
    live = by_key[("binance", H2)]
    assert (live["requests"], live["errors"], live["success_rate"]) == (2, 1, 0.5)
    # p50 is 80 ms, in (75, 100]: reported within that bucket.
    assert 75 <= live["p50_ms"] <= 100
    assert live["avg_ms"] == pytest.approx(190.0)


async def test_previous_hour_is_read_live_until_its_roll_up_has_settled(db_sessionmaker) -> None:
    await insert_rows(db_sessionmaker, ATTEMPTS, BINANCE_H1)
    # Rolled up while H1 was still running, then a probe started in H1 is stored late.
    async with db_sessionmaker() as session:
        await rollups.roll_up_recent(session, kind="probe", now=H1 + 50 * MIN, ladder=LADDER)
    await insert_rows(
        db_sessionmaker, ATTEMPTS, [attempt("binance", Outcome.TIMEOUT, H1 + 59 * MIN, 30_000.0)]
    )

    async def h1_requests(now: datetime) -> int:
        async with db_sessionmaker() as session:
            points = await charts.health_history(
                session,
                start=H1,
                end=now,
                bucket=timedelta(hours=1),
                providers=["binance"],
                now=now,
                ladder=LADDER,
            )
        return next(p["requests"] for p in points if p["bucket_start"] == H1)

    assert await h1_requests(H2 + 1 * MIN) == 5  # live: the late row counts
    async with db_sessionmaker() as session:
        await rollups.roll_up_recent(session, kind="probe", now=H2 + 5 * MIN, ladder=LADDER)
    async with db_sessionmaker() as session, session.begin():
        await session.execute(delete(ATTEMPTS))
    assert await h1_requests(H2 + 6 * MIN) == 5  # settled roll-up, raw rows gone


async def test_health_history_daily_buckets_merge_hours_and_filter_providers(
    db_sessionmaker,
) -> None:
    await insert_rows(db_sessionmaker, ATTEMPTS, BINANCE_H0 + BINANCE_H1 + ETHERSCAN_H0)
    await roll(db_sessionmaker)
    now = H0 + timedelta(days=2)
    async with db_sessionmaker() as session:
        points = await charts.health_history(
            session,
            start=H0 - timedelta(days=1),
            end=now,
            bucket=timedelta(days=1),
            providers=["binance"],
            now=now,
            ladder=LADDER,
        )
    assert len(points) == 1
    day = points[0]
    assert day["provider"] == "binance"
    assert day["bucket_start"] == datetime(2025, 3, 1, tzinfo=UTC)
    assert (day["requests"], day["errors"]) == (9, 2)
    # Sorted: 20 20 20 20 50 100 200 900 10000 → p50 = 5th = 50 ms, in (40, 50].
    assert 40 <= day["p50_ms"] <= 50
    assert 7_500 <= day["p95_ms"] <= 10_000


async def test_health_history_refuses_a_bucket_that_is_not_whole_hours(db_sessionmaker) -> None:
    async with db_sessionmaker() as session:
        with pytest.raises(ValueError, match="whole number of hours"):
            await charts.health_history(
                session,
                start=H0,
                end=H2,
                bucket=timedelta(minutes=90),
                providers=None,
                now=H2,
                ladder=LADDER,
            )


def run(category: str, planned: datetime, result: str, reason: str = "") -> dict:
    return {
        "provider": "p",
        "category": category,
        "planned_at": planned,
        "started_at": None if result == "skipped" else planned,
        "lateness_ms": None if result == "skipped" else 0.0,
        "result": result,
        "reason": reason,
    }


async def test_compliance_per_category_and_hour_counts_skipped_runs_as_not_on_time(
    db_sessionmaker,
) -> None:
    rows = [run("market_data", H0 + i * MIN, "on_time") for i in range(6)]
    rows += [run("market_data", H0 + 10 * MIN, "late")]
    rows += [run("market_data", H0 + 11 * MIN, "skipped", "rate_limit_budget")]
    rows += [run("market_data", H1 + MIN, "on_time")]
    rows += [run("news", H0 + 2 * MIN, "skipped", "circuit_open")]
    rows += [run("news", H0 - timedelta(days=3), "on_time")]  # outside the range
    await insert_rows(db_sessionmaker, TABLES["schedule_compliance"], rows)

    async with db_sessionmaker() as session:
        hourly = await charts.compliance(session, start=H0, end=H2, bucket="hour", categories=None)
        daily = await charts.compliance(
            session, start=H0, end=H2, bucket="day", categories=["market_data"]
        )
    assert [(p["category"], p["bucket_start"], p["compliance_pct"]) for p in hourly] == [
        ("market_data", H0, 75.0),
        ("market_data", H1, 100.0),
        ("news", H0, 0.0),
    ]
    first = hourly[0]
    assert (first["planned"], first["on_time"], first["late"], first["skipped"]) == (8, 6, 1, 1)
    assert [(p["bucket_start"], p["planned"], p["compliance_pct"]) for p in daily] == [
        (datetime(2025, 3, 1, tzinfo=UTC), 9, round(700 / 9, 2))
    ]


async def test_usage_summary_combines_roll_ups_and_the_live_hour_per_key_and_route(
    db_sessionmaker,
) -> None:
    rolled = [usage(1, "/api/status", 200, 10.0, H0 + i * MIN) for i in range(10)]
    rolled += [usage(2, "/api/status", 500, 100.0, H0 + MIN)]
    await insert_rows(db_sessionmaker, USAGE, rolled)
    await roll(db_sessionmaker, kind="api", now=H1 + 5 * MIN)
    live = [usage(1, "/api/status", 429, 1.0, H1 + 2 * MIN)]
    live += [usage(1, "/api/logs", 200, 4.0, H1 + 3 * MIN)]
    await insert_rows(db_sessionmaker, USAGE, live)

    async def summary(**filters: Any) -> dict:
        async with db_sessionmaker() as session:
            return await charts.usage_summary(
                session,
                start=H0,
                end=H1 + 10 * MIN,
                now=H1 + 10 * MIN,
                ladder=LADDER,
                **{"key_id": None, "route": None, **filters},
            )

    everything = await summary()
    assert (everything["start"], everything["end"]) == (H0, H2)
    assert everything["total"]["requests"] == 13
    assert everything["total"]["errors"] == 2
    items = {(i["key_id"], i["route"]): i for i in everything["items"]}
    assert set(items) == {(1, "/api/status"), (2, "/api/status"), (1, "/api/logs")}
    key1 = items[(1, "/api/status")]
    assert (key1["requests"], key1["errors"]) == (11, 1)
    assert 7 <= key1["p50_ms"] <= 10
    assert everything["items"][0]["route"] == "/api/status"  # most requests first
    assert everything["items"][0]["key_id"] == 1

    only_key1 = await summary(key_id=1)
    assert {(i["key_id"], i["route"]) for i in only_key1["items"]} == {
        (1, "/api/status"),
        (1, "/api/logs"),
    }
    only_logs = await summary(route="/api/logs")
    assert only_logs["total"]["requests"] == 1
