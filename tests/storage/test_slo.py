"""SLO figures over a known history written straight into real SQLite and PostgreSQL:
exact uptime, error budget, burn rates, incidents, MTTR, MTBF and the scorecard, checked
against an oracle that counts the generated rows one by one."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import and_, delete, not_, or_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from apiwatch.analysis import slo as calc
from apiwatch.analysis.rollups import LADDER
from apiwatch.catalogue.loader import Catalogue
from apiwatch.runtime.slo import SloService
from apiwatch.storage.db import create_engine, create_sessionmaker
from apiwatch.storage.models import TABLES
from apiwatch.storage.repositories import slo as slo_repo
from apiwatch.storage.repositories.raw_summary import HOUR, ceil_to, floor_to
from tests.conftest import empty_tables
from tests.storage import slo_history as h

# Whole-file wall clock for the test processes' ordering (tests/conftest.py).
pytestmark = pytest.mark.slow(21)

DAY = timedelta(days=1)


async def _fill(url: str) -> None:
    await empty_tables(url)
    engine = create_engine(url)
    try:
        await h.store(create_sessionmaker(engine), h.HISTORY)
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def stored(migrated_db_url: str) -> Iterator[str]:
    """The history, written once per module and backend (the tests only read it, except
    one, which writes it again when done)."""
    asyncio.run(_fill(migrated_db_url))
    yield migrated_db_url
    asyncio.run(empty_tables(migrated_db_url))


@pytest.fixture
async def sessions(stored: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(stored)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


@pytest.fixture
def service(sessions: async_sessionmaker[AsyncSession]) -> SloService:
    return SloService(catalogue=h.catalogue(), sessions=sessions, poor_after=3)


def test_the_history_is_what_the_tests_say() -> None:
    # The oracle itself, against the scenario: 12 outage checks minus 5 in maintenance,
    # plus 4 recent timeouts; 6 throttled; 30 days of checks every 10 minutes.
    counts = h.oracle(h.HISTORY, "binance", h.NOW - 30 * DAY, h.NOW)
    assert (counts["bad"], counts["throttled"]) == (11, 6)
    assert counts["good"] + counts["bad"] + counts["throttled"] == 30 * 144 - 12 - 5


async def test_every_window_has_exact_events_uptime_budget_and_latency(
    service: SloService,
) -> None:
    [binance] = await service.overview(now=h.NOW, provider="binance", endpoints=True)
    assert binance["objective"]["target_pct"] == 99.5
    assert binance["objective"]["sla_pct"] == 99.9
    for label, span in calc.WINDOWS.items():
        expected = h.oracle(h.HISTORY, "binance", h.NOW - span, h.NOW)
        figures = binance["windows"][label]
        events = expected["good"] + expected["bad"]
        assert (figures["good"], figures["bad"], figures["throttled"]) == (
            expected["good"],
            expected["bad"],
            expected["throttled"],
        ), label
        assert figures["uptime"] == pytest.approx(expected["good"] / events, abs=1e-6)
        spent = expected["bad"] / (0.005 * events)
        budget = figures["budget"]
        assert budget["spent"] == pytest.approx(spent, abs=1e-6), label
        assert budget["total_s"] == pytest.approx(0.005 * span.total_seconds(), abs=0.1)
        assert budget["remaining_s"] == pytest.approx(
            (1 - spent) * 0.005 * span.total_seconds(), abs=0.1
        )
        assert budget["burn_rate"] == pytest.approx(expected["bad"] / events / 0.005, abs=1e-5)
        # Good latencies are 100 ms, bad 900 ms: the percentiles fall in their buckets.
        latencies = sorted(expected["latencies"])
        for name, q in (("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99)):
            true = latencies[max(1, math.ceil(q * len(latencies))) - 1]
            lower, upper = LADDER.bucket_range(LADDER.bucket_index(true))
            assert lower <= figures[name] <= upper, (label, name)
    month = binance["windows"]["30d"]
    assert binance["budget"] == month["budget"]
    assert month["meets_target"] is True  # 99.74 % ≥ 99.5 %
    assert month["meets_sla"] is False  # < 99.9 %
    assert binance["windows"]["1h"]["meets_target"] is False  # 4 of 6 failed
    # Per endpoint, with the ticker's own latency objective.
    ticker = binance["endpoints"]["ticker_24hr"]
    expected = h.oracle(h.HISTORY, "binance", h.NOW - 30 * DAY, h.NOW, endpoint="ticker_24hr")
    assert (ticker["good"], ticker["bad"]) == (expected["good"], expected["bad"])
    assert ticker["objective"]["latency_p95_ms"] == 500
    assert ticker["meets_latency"] is True
    assert binance["endpoints"]["health"]["objective"]["latency_p95_ms"] is None


async def test_the_figures_come_from_the_rollups_not_the_raw_rows(
    service: SloService, sessions: async_sessionmaker[AsyncSession], stored: str
) -> None:
    before = (await service.overview(now=h.NOW, provider="binance"))[0]
    # Delete the raw rows of every whole hour the roll-ups cover. Kept: the partial first
    # hour of each window and the two hours a maintenance window cuts through (those parts
    # are counted from raw rows, by design).
    attempts = TABLES["connection_attempts"].c
    first, last = ceil_to(h.NOW - 90 * DAY, HOUR), floor_to(h.NOW, HOUR) - 2 * HOUR
    kept = [h.OUTAGE] + [
        (floor_to(h.NOW - span, HOUR), floor_to(h.NOW - span, HOUR) + HOUR)
        for span in calc.WINDOWS.values()
    ]
    keep = or_(*(and_(attempts.started_at >= a, attempts.started_at < b) for a, b in kept))
    async with sessions() as session:
        result = await session.execute(
            delete(TABLES["connection_attempts"]).where(
                attempts.started_at >= first, attempts.started_at < last, not_(keep)
            )
        )
        await session.commit()
    assert result.rowcount > 4000
    try:
        after = (await service.overview(now=h.NOW, provider="binance"))[0]
        assert after["windows"] == before["windows"]
    finally:
        await _fill(stored)


async def test_burn_rates_over_every_alert_window_are_exact(service: SloService) -> None:
    burns = (await service.burn_rates(now=h.NOW, provider="binance"))["binance"]
    assert set(burns) == set(calc.burn_windows(calc.DEFAULT_BURN_CONDITIONS))
    for window, rate in burns.items():
        expected = h.oracle(h.HISTORY, "binance", h.NOW - window, h.NOW)
        events = expected["good"] + expected["bad"]
        assert rate == pytest.approx(expected["bad"] / events / 0.005), window
    assert burns[timedelta(hours=1)] == pytest.approx(4 / 6 / 0.005)
    assert burns[timedelta(minutes=5)] == 0  # the last check (12:30) succeeded
    # 1 h burns at 133x, but the last 5 minutes are clean: the fast page does not hold;
    # 6 h (4 of 36) and 30 min (2 of 3) both burn above 6x: the slow page does.
    held = calc.judge_burn(burns, calc.DEFAULT_BURN_CONDITIONS)
    assert held is not None and held.name == "page_slow"


# At NOW, and on the day after binance's outage, when its maintenance (Nov 20) is inside the
# three-day window and must be taken out.
@pytest.mark.parametrize("now", [h.NOW, datetime(2026, 11, 21, 12, tzinfo=UTC)])
async def test_burn_rates_of_every_provider_at_once_match_each_asked_for_alone(
    sessions: async_sessionmaker[AsyncSession], now: datetime
) -> None:
    """Asked for every provider, the rows are read without naming the providers; one not
    enabled (here coingecko, whose checks are in the history) is left out after."""
    full = h.catalogue()
    providers = dict(full.providers)
    providers["coingecko"] = providers["coingecko"].model_copy(update={"enabled": False})
    service = SloService(
        catalogue=Catalogue(providers=providers, sources=full.sources), sessions=sessions
    )
    everyone = await service.burn_rates(now=now)
    assert set(everyone) == {spec.id for spec in service.specs()}
    assert "coingecko" not in everyone
    for provider in ("binance", "bybit"):
        alone = await service.burn_rates(now=now, provider=provider)
        assert everyone[provider] == alone[provider]
    three_days = h.oracle(h.HISTORY, "binance", now - 3 * DAY, now)  # maintenance taken out
    burn = three_days["bad"] / (three_days["good"] + three_days["bad"]) / 0.005
    assert everyone["binance"][3 * DAY] == pytest.approx(burn)
    assert burn > 0  # the history burns there


@pytest.mark.parametrize("maintenance", [False, True])
async def test_counts_without_histograms_are_the_same_counts(
    sessions: async_sessionmaker[AsyncSession], service: SloService, maintenance: bool
) -> None:
    # What burn rates read every minute: the same events, no histogram read or built,
    # with and without the maintenance windows taken out.
    starts = [h.NOW - span for span in calc.WINDOWS.values()]
    async with sessions() as session:
        excluded = {}
        if maintenance:
            excluded = await service._maintenance(
                session, service.specs(), start=min(starts), end=h.NOW
            )
            assert excluded  # the history has some: the path is exercised
        args = {"starts": starts, "end": h.NOW, "now": h.NOW, "ladder": LADDER}
        full = await slo_repo.event_counts(session, **args, excluded=excluded)
        lean = await slo_repo.event_counts(session, **args, excluded=excluded, histograms=False)
    assert set(lean) == set(full)
    compared = 0
    for start, per_key in full.items():
        assert set(lean[start]) == set(per_key)
        for key, figures in per_key.items():
            counts = {k: figures[k] for k in ("good", "bad", "throttled")}
            assert {k: lean[start][key][k] for k in counts} == counts, (start, key)
            assert lean[start][key]["hist"] == []
            compared += 1
    assert compared >= 2 * len(starts)


async def test_incidents_mttr_and_mtbf_from_status_changes(service: SloService) -> None:
    start = h.NOW - 30 * DAY
    found = await service.incidents(start=start, end=h.NOW, now=h.NOW, provider="binance")
    incidents = sorted(found["incidents"], key=lambda i: i["start"])
    assert [i["duration_s"] for i in incidents] == [7200.0, 7200.0, 2700.0]
    straddling, outage, short = incidents
    assert straddling["start"] == start - HOUR and straddling["cause"] == "timeout"
    assert outage["worst_status"] == "offline" and outage["cause"] == "server_error"
    assert [a["rule"] for a in outage["alerts"]] == ["provider_status"]
    assert short["worst_status"] == "degraded" and not short["open"]
    # Went unknown at 06:15 (not probed) and online at 06:45: one incident, 45 minutes.
    assert short["end"] == datetime(2026, 11, 25, 6, 45, tzinfo=h.NOW.tzinfo)
    figures = found["providers"]["binance"]
    assert figures["incidents"] == 3
    assert figures["mttr_s"] == pytest.approx((7200 + 7200 + 2700) / 3)
    downtime = 3600 + 7200 + 2700  # the straddling one counts its hour inside the window
    assert figures["incident_time_s"] == pytest.approx(downtime)
    assert figures["mtbf_s"] == pytest.approx((30 * 86400 - downtime) / 2)


async def test_scorecard_ranks_and_flags_poor_slas_with_reasons(service: SloService) -> None:
    rows = await service.scorecard(
        windows=service.rolling_windows(30 * DAY, h.NOW), label="30d", now=h.NOW
    )
    ranked = [r["provider"] for r in rows if r["rank"] is not None]
    assert ranked == ["coingecko", "binance", "etherscan"]
    assert all(r["events"] == 0 for r in rows if r["rank"] is None)
    by_id = {r["provider"]: r for r in rows}
    binance, etherscan, coingecko = by_id["binance"], by_id["etherscan"], by_id["coingecko"]
    assert binance["poor_sla"] is True
    assert binance["reasons"] == ["uptime 99.744% over 30d is below its published SLA of 99.9%"]
    assert binance["uptime_pct"] == pytest.approx(100 * (4286 / 4297), abs=1e-4)
    assert binance["incidents"] == 3 and binance["throttled"] == 6
    assert etherscan["poor_sla"] is True and etherscan["missed_windows"] == 3
    assert "in each of the last 3 30d windows" in etherscan["reasons"][0]
    assert etherscan["stale_alerts"] == 1 and etherscan["divergence_alerts"] == 0
    # Order-book divergence counts as divergence; a crossed book is an integrity failure.
    assert binance["divergence_alerts"] == 2 and binance["stale_alerts"] == 0
    assert coingecko["divergence_alerts"] == 1
    assert coingecko["poor_sla"] is False and coingecko["uptime_pct"] == 100.0
    assert coingecko["budget_spent_pct"] == 0.0
