"""Data collection through the composed runtime, against the simulator: data points stored
exactly, compliance of planned runs, skip reasons, freshness and `data_stale`, consensus
and `data_divergent`, news de-duplication and adaptive polling."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from apiwatch.catalogue.loader import load_catalogue
from apiwatch.collection import Collection
from apiwatch.domain import DataDivergent, DataStale, IntervalChanged, Status
from apiwatch.runtime import Runtime, open_runtime
from apiwatch.settings import Settings
from apiwatch.simulator import Scenario, Simulator
from apiwatch.storage.models import DataCollection, EventRow, ScheduleCompliance

KEYS = {
    name: f"test-{name.lower()}-0123456789"
    for spec in load_catalogue().providers.values()
    for name in spec.auth.keys
}
MARKET = ["binance", "coingecko", "coinmarketcap", "cryptocompare"]


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(port=0) as simulator:
        yield simulator


async def open_for(
    tmp_path: Path, sim: Simulator, monkeypatch: pytest.MonkeyPatch, **extra: object
):
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    settings = Settings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'c.db'}",
        upstream_override=sim.url,
        scheduler_enabled=False,
        recorder_flush_ms=10,
        **extra,
    )
    return open_runtime(settings)


async def rows(runtime: Runtime, model) -> list:
    await runtime.recorder.flush()
    async with runtime.sessions() as session:
        return list((await session.execute(select(model))).scalars())


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def test_market_collection_stores_exact_prices_and_an_on_time_compliance_row(
    tmp_path: Path, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await open_for(tmp_path, sim, monkeypatch) as runtime:
        planned = datetime.now(UTC)
        run = await runtime.collection.collect("binance", planned_at=planned)
        assert run["result"] == "done" and run["points"] >= 3
        points = await rows(runtime, DataCollection)
        compliance = await rows(runtime, ScheduleCompliance)
    btc = next(p for p in points if p.item == "BTC-USD")
    assert isinstance(btc.value, Decimal) and btc.value > 1000
    assert btc.data_timestamp is not None and btc.provider == "binance"
    assert [(c.result, c.provider, c.category) for c in compliance] == [
        ("on_time", "binance", "market_data")
    ]
    assert compliance[0].planned_at == planned


async def test_a_run_started_past_its_tolerance_is_late_with_its_lateness(
    tmp_path: Path, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await open_for(tmp_path, sim, monkeypatch) as runtime:
        clock = Clock(datetime(2026, 1, 1, 12, 0, 7, tzinfo=UTC))
        collection = Collection(
            catalogue=runtime.catalogue,
            engine=runtime.engine,
            handle=runtime.handle,
            record=runtime.recorder.record,
            announce=runtime.announce,
            status_of=lambda pid: runtime.tracker.state(pid).status,
            known_items=lambda items: _none(),
            clock=clock,
        )
        collection.schedules = runtime.collection.schedules
        planned = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
        await collection.collect("binance", planned_at=planned)  # 7 s late, tolerance 5 s
        clock.now = datetime(2026, 1, 1, 12, 1, 4, tzinfo=UTC)
        await collection.collect("binance", planned_at=planned + timedelta(minutes=1))
        compliance = await rows(runtime, ScheduleCompliance)
    assert [(c.result, c.lateness_ms) for c in compliance] == [
        ("late", 7000.0),
        ("on_time", 4000.0),
    ]


async def _none() -> set[str]:
    return set()


async def test_skipped_runs_name_their_reason(
    tmp_path: Path, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await open_for(tmp_path, sim, monkeypatch) as runtime:
        now = datetime.now(UTC)
        # offline: three failed health checks
        sim.set_scenario("cryptocompare", Scenario("down", {"status": 503}))
        for _ in range(3):
            await runtime.check(provider_ids=["cryptocompare"])
        assert runtime.tracker.state("cryptocompare").status is Status.OFFLINE
        offline = await runtime.collection.collect("cryptocompare", planned_at=now)
        # budget: fill Binance's minute window, then collect
        guard = runtime.engine.guard
        assert guard is not None
        limit = runtime.catalogue.providers["binance"].rate_limits.windows()["minute"]
        await guard.gate.report("binance", "minute", limit)
        budget = await runtime.collection.collect("binance", planned_at=now)
        compliance = await rows(runtime, ScheduleCompliance)
    assert offline["reason"] == "provider_offline"
    assert budget["reason"] == "rate_limit_budget"
    assert sorted((c.provider, c.result, c.reason) for c in compliance) == [
        ("binance", "skipped", "rate_limit_budget"),
        ("cryptocompare", "skipped", "provider_offline"),
    ]


async def test_a_provider_without_its_key_is_skipped_with_no_key(
    tmp_path: Path, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await open_for(tmp_path, sim, monkeypatch) as runtime:
        pass
    for name in ("ETHERSCAN_KEY_1", "ETHERSCAN_KEY_2"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'nokey.db'}",
        upstream_override=sim.url,
        scheduler_enabled=False,
    )
    async with open_runtime(settings) as runtime:
        run = await runtime.collection.collect("etherscan", planned_at=datetime.now(UTC))
    assert run["result"] == "skipped" and run["reason"] == "no_key"


async def test_stale_data_fetched_on_schedule_raises_one_data_stale_event(
    tmp_path: Path, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await open_for(tmp_path, sim, monkeypatch) as runtime:
        seen: list[object] = []
        runtime.bus.add_listener(seen.append)
        sim.set_scenario("coingecko", Scenario("stale", {"age_s": 3600}))
        for _ in range(2):
            await runtime.collection.collect("coingecko", planned_at=datetime.now(UTC))
        freshness = {
            row["item"]: row
            for row in runtime.collection.freshness()
            if row["provider"] == "coingecko"
        }
        events = await rows(runtime, EventRow)
    stale = [e for e in seen if isinstance(e, DataStale)]
    assert {e.item for e in stale} >= {"BTC-USD"}
    assert len([e for e in stale if e.item == "BTC-USD"]) == 1  # once per episode
    assert freshness["BTC-USD"]["status"] == "stale" and freshness["BTC-USD"]["age_s"] > 3000
    assert any(e.kind == "data_stale" and e.provider == "coingecko" for e in events)


@pytest.mark.slow(15)
async def test_a_skewed_provider_is_flagged_divergent_with_its_deviation(
    tmp_path: Path, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await open_for(tmp_path, sim, monkeypatch) as runtime:
        seen: list[object] = []
        runtime.bus.add_listener(seen.append)
        sim.set_scenario("cryptocompare", Scenario("divergent", {"pct": 5}))
        for pid in MARKET:
            await runtime.collection.collect(pid)
        view = runtime.collection.consensus_view()
    divergent = [e for e in seen if isinstance(e, DataDivergent) and not e.cleared]
    assert {e.provider for e in divergent} == {"cryptocompare"}
    btc = view["BTC-USD"]
    assert btc["divergent"] == ["cryptocompare"]
    assert btc["providers"]["cryptocompare"]["deviation_pct"] == pytest.approx(5, abs=0.6)
    assert abs(btc["providers"]["binance"]["deviation_pct"]) < 1


async def test_news_is_stored_once_per_url_across_runs(
    tmp_path: Path, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await open_for(tmp_path, sim, monkeypatch) as runtime:
        first = await runtime.collection.collect("cryptopanic")
        await runtime.recorder.flush()
        second = await runtime.collection.collect("cryptopanic")
        points = await rows(runtime, DataCollection)
        freshness = [r for r in runtime.collection.freshness() if r["provider"] == "cryptopanic"]
    news = [p.item for p in points if p.item.startswith("news:")]
    assert first["points"] > 0 and second["points"] == 0
    assert len(news) == len(set(news)) == first["points"]
    assert [r["item"] for r in freshness] == ["news:latest"]


async def test_adaptive_polling_halves_market_intervals_on_a_move_and_restores_them(
    tmp_path: Path, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await open_for(
        tmp_path,
        sim,
        monkeypatch,
        adaptive_categories=["market_data"],
        adaptive_move_pct=1.0,
        adaptive_lookback_min=0.02,  # ~1 s of history
        adaptive_floor_s=15,
    ) as runtime:
        seen: list[object] = []
        runtime.bus.add_listener(seen.append)
        await runtime.collection.collect("binance")
        for pid in ("binance", "coinmarketcap", "cryptocompare"):
            sim.set_scenario(pid, Scenario("divergent", {"pct": 5}))
        for pid in ("binance", "coinmarketcap", "cryptocompare"):
            await runtime.collection.collect(pid)
        binance = runtime.collection.schedules["binance"]
        coingecko = runtime.collection.schedules["coingecko"]
        tightened = (binance.effective_interval_s, coingecko.effective_interval_s)
        import asyncio

        await asyncio.sleep(1.5)  # the move leaves the look-back window
        await runtime.collection.collect("binance")
        restored = (binance.effective_interval_s, coingecko.effective_interval_s)
    assert binance.interval_s == 60 and tightened[0] == 30
    # CoinGecko's monthly quota allows no faster than its configured interval.
    assert tightened[1] == coingecko.interval_s >= 300
    assert restored == (60, coingecko.interval_s)
    changes = [e for e in seen if isinstance(e, IntervalChanged) and e.provider == "binance"]
    assert [(c.old_interval_s, c.new_interval_s) for c in changes] == [(60, 30), (30, 60)]
    assert "moved" in changes[0].reason


async def test_default_schedules_respect_each_providers_quota(
    tmp_path: Path, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await open_for(tmp_path, sim, monkeypatch) as runtime:
        schedules = runtime.collection.schedules
    assert schedules["binance"].interval_s == 60
    assert schedules["coingecko"].interval_s >= 30 * 86400 / (0.8 * 10000)
    assert schedules["newsapi"].interval_s >= 86400 / 80
    assert schedules["alternative_me"].interval_s == 900
    assert schedules["thegraph"].enabled is False  # onchain placeholders stay off


async def test_a_disabled_schedule_records_its_slots_as_skipped_disabled(
    tmp_path: Path, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await open_for(tmp_path, sim, monkeypatch) as runtime:
        state = runtime.collection.schedules["alternative_me"]
        await runtime.update_schedule(state.schedule_id, interval_s=None, enabled=False)
        run = await runtime.collection.collect("alternative_me", planned_at=datetime.now(UTC))
        manual = await runtime.collection.collect("alternative_me")  # a trigger still runs
        compliance = await rows(runtime, ScheduleCompliance)
    assert run["result"] == "skipped" and run["reason"] == "disabled"
    assert manual["result"] == "done"
    assert [(c.result, c.reason) for c in compliance] == [("skipped", "disabled")]


async def test_a_divergence_that_ends_raises_a_cleared_event(
    tmp_path: Path, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await open_for(tmp_path, sim, monkeypatch) as runtime:
        seen: list[object] = []
        runtime.bus.add_listener(seen.append)
        sim.set_scenario("cryptocompare", Scenario("divergent", {"pct": 5}))
        for pid in MARKET:
            await runtime.collection.collect(pid)
        sim.set_scenario("cryptocompare", Scenario("healthy", {}))
        await runtime.collection.collect("cryptocompare")
        view = runtime.collection.consensus_view()
    events = [(e.item, e.cleared) for e in seen if isinstance(e, DataDivergent)]
    assert ("BTC-USD", False) in events and ("BTC-USD", True) in events
    assert events.index(("BTC-USD", False)) < events.index(("BTC-USD", True))
    assert view["BTC-USD"]["divergent"] == []


def test_a_very_long_news_url_is_stored_under_a_digest() -> None:
    from apiwatch.collection.model import storage_item

    long_item = "news:https://例.com/" + "文" * 990
    stored = storage_item(long_item)
    assert stored.startswith("news:sha256:") and len(stored.encode()) < 100
    assert storage_item("news:https://example.org/a") == "news:https://example.org/a"


async def test_a_per_second_limit_delays_the_rest_of_a_run_instead_of_skipping_it(
    tmp_path: Path, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await open_for(tmp_path, sim, monkeypatch) as runtime:
        # Etherscan allows 3 a second; a health check plus its data endpoints is more.
        endpoints = [
            n for n, e in runtime.catalogue.providers["etherscan"].endpoints.items() if e.collector
        ]
        import asyncio
        import time

        await asyncio.sleep(1.02 - time.time() % 1)  # all in one second window
        await runtime.check(provider_ids=["etherscan"])
        run = await runtime.collection.collect("etherscan", planned_at=datetime.now(UTC))
    assert run["result"] == "done" and run["skipped"] == []
    assert run["fetched"] == len(endpoints)
