"""Checks per outcome in the probe roll-ups, on SQLite and PostgreSQL: exact counts per
hour (final attempts only, skipped left out), idempotent re-runs, rows rolled up before
outcomes were kept (read as unknown), and the live hours read the same way."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, insert

from apiwatch.analysis.rollups import LADDER
from apiwatch.domain import Outcome
from apiwatch.storage.repositories import charts
from apiwatch.storage.repositories.raw_summary import Series
from tests.storage.test_rollups_repo import (
    ATTEMPTS,
    BINANCE_H0,
    BINANCE_H1,
    ETHERSCAN_H0,
    H0,
    H1,
    H2,
    MIN,
    ROLLUPS,
    USAGE,
    attempt,
    insert_rows,
    roll,
    stored,
    usage,
)

# BINANCE_H0's checks: the retried timeout is not final and the skipped probe not sent.
B0 = {"ok": 2, "slow": 1, "server_error": 1}
B1 = {"ok": 4}
E0 = {"ok": 1, "rate_limited": 1}


async def test_probe_roll_ups_keep_the_checks_per_outcome_of_each_hour(db_sessionmaker) -> None:
    await insert_rows(db_sessionmaker, ATTEMPTS, BINANCE_H0 + BINANCE_H1 + ETHERSCAN_H0)
    await roll(db_sessionmaker)
    rows = await stored(db_sessionmaker)
    assert {key: row["outcomes"] for key, row in rows.items()} == {
        ("binance", "", H0): B0,
        ("binance", "", H1): B1,
        ("etherscan", "", H0): E0,
    }
    # Requests and errors are still per request, retries included.
    assert (rows[("binance", "", H0)]["count"], rows[("binance", "", H0)]["errors"]) == (5, 2)


async def test_re_rolling_up_rewrites_the_outcomes_instead_of_adding_to_them(
    db_sessionmaker,
) -> None:
    await insert_rows(db_sessionmaker, ATTEMPTS, BINANCE_H0)
    await roll(db_sessionmaker)
    await roll(db_sessionmaker)
    assert (await stored(db_sessionmaker))[("binance", "", H0)]["outcomes"] == B0
    late = attempt("binance", Outcome.TIMEOUT, H0 + 58 * MIN, 30_000.0)
    await insert_rows(db_sessionmaker, ATTEMPTS, [late])
    await roll(db_sessionmaker)
    assert (await stored(db_sessionmaker))[("binance", "", H0)]["outcomes"] == {**B0, "timeout": 1}
    # Raw rows gone (retention): the stored hour is left as it is.
    async with db_sessionmaker() as session, session.begin():
        await session.execute(delete(ATTEMPTS))
    await roll(db_sessionmaker)
    assert (await stored(db_sessionmaker))[("binance", "", H0)]["outcomes"] == {**B0, "timeout": 1}


async def test_an_hour_of_retries_only_has_no_checks_and_api_rows_no_outcomes(
    db_sessionmaker,
) -> None:
    retry = attempt("kraken", Outcome.TIMEOUT, H0 + 59 * MIN, 10_000.0, final=False)
    await insert_rows(db_sessionmaker, ATTEMPTS, [retry])
    await insert_rows(db_sessionmaker, USAGE, [usage(7, "/api/status", 200, 2.0, H0)])
    await roll(db_sessionmaker)
    await roll(db_sessionmaker, kind="api")
    kraken = (await stored(db_sessionmaker))[("kraken", "", H0)]
    assert (kraken["count"], kraken["outcomes"]) == (1, {})
    assert (await stored(db_sessionmaker, "api"))[("7", "/api/status", H0)]["outcomes"] is None


async def test_hourly_series_gives_outcomes_from_roll_ups_live_hours_and_none_for_old_rows(
    db_sessionmaker,
) -> None:
    await insert_rows(db_sessionmaker, ATTEMPTS, BINANCE_H0 + BINANCE_H1)
    await roll(db_sessionmaker, now=H2 + 5 * MIN)
    async with db_sessionmaker() as session, session.begin():
        await session.execute(delete(ATTEMPTS))
        # A roll-up made before revision 0005: no outcomes.
        await session.execute(
            insert(ROLLUPS),
            [
                {
                    "kind": "probe",
                    "subject": "binance",
                    "detail": "",
                    "hour": H0 - timedelta(hours=1),
                    "count": 3,
                    "errors": 1,
                    "latency_ms_sum": 30.0,
                    "latency_hist": LADDER.histogram([10.0, 10.0, 10.0]),
                    "p50_ms": 10.0,
                    "p95_ms": 10.0,
                    "updated_at": H2,
                }
            ],
        )
    live = [
        attempt("binance", Outcome.OK, H2 + 1 * MIN, 10.0),
        attempt("binance", Outcome.AUTH_ERROR, H2 + 2 * MIN, 10.0),
        attempt("binance", Outcome.SKIPPED, H2 + 3 * MIN, None),
    ]
    await insert_rows(db_sessionmaker, ATTEMPTS, live)
    now = H2 + 20 * MIN
    async with db_sessionmaker() as session:
        hours = await charts.hourly_series(
            session,
            kind="probe",
            start=H0 - timedelta(hours=1),
            end=now,
            now=now,
            ladder=LADDER,
            subjects=["binance"],
            outcomes=True,
        )
        plain = await charts.hourly_series(
            session, kind="probe", start=H0, end=now, now=now, ladder=LADDER
        )
    got = {hour: figures.outcomes for _s, _d, hour, figures in hours}
    assert got == {H0 - timedelta(hours=1): None, H0: B0, H1: B1, H2: {"ok": 1, "auth_error": 1}}
    assert all(figures.outcomes is None for *_, figures in plain)


def test_a_span_knows_its_outcomes_only_while_every_hour_does() -> None:
    day = Series(outcomes={})
    day.absorb(Series(count=4, outcomes=dict(B0)))
    day.absorb(Series(count=4, outcomes=dict(B1)))
    assert day.outcomes == {"ok": 6, "slow": 1, "server_error": 1}
    day.absorb(Series(count=3))
    assert (day.count, day.outcomes) == (11, None)
