"""The budget gate's behaviour, the same over the memory and the Redis store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from apiwatch.budget.decisions import BudgetWarning, WindowUsage, forecast_exhaustion
from apiwatch.budget.gate import BudgetGate
from apiwatch.budget.headers import usage_from_headers
from apiwatch.budget.stores import BudgetStore
from tests.budget.conftest import T0, FakeClock

START = datetime.fromtimestamp(T0, UTC)  # 2026-03-14 12:00:00 UTC


def gate_for(store: BudgetStore, clock: FakeClock, limits: dict[str, dict[str, int]]) -> BudgetGate:
    return BudgetGate(limits, store, clock=clock)


async def usage(gate: BudgetGate, provider: str, window: str) -> WindowUsage:
    rows = [u for u in await gate.snapshot(provider) if u.window == window]
    assert len(rows) == 1, rows
    return rows[0]


async def test_request_counts_its_weight_in_every_window_of_its_provider(
    store: BudgetStore, clock: FakeClock
) -> None:
    gate = gate_for(store, clock, {"binance": {"minute": 6000, "day": 100_000}})
    assert (await gate.acquire("binance", weight=20)).allowed
    assert (await gate.acquire("binance", weight=2)).allowed
    assert (await usage(gate, "binance", "minute")).used == 22
    assert (await usage(gate, "binance", "day")).used == 22


async def test_providers_have_budgets_of_their_own(store: BudgetStore, clock: FakeClock) -> None:
    gate = gate_for(store, clock, {"a": {"minute": 1}, "b": {"minute": 1}})
    assert (await gate.acquire("a")).allowed
    assert (await gate.acquire("b")).allowed
    assert not (await gate.acquire("a")).allowed


async def test_full_window_refuses_with_reason_and_does_not_count_the_refused_request(
    store: BudgetStore, clock: FakeClock
) -> None:
    gate = gate_for(store, clock, {"etherscan": {"second": 3, "day": 100_000}})
    for _ in range(3):
        assert (await gate.acquire("etherscan")).allowed
    refused = await gate.acquire("etherscan")
    assert not refused.allowed
    assert refused.reason == "rate_limit_budget"
    assert refused.window == "second"
    assert refused.reset_at == START + timedelta(seconds=1)
    assert not (await gate.acquire("etherscan")).allowed
    assert (await usage(gate, "etherscan", "day")).used == 3
    assert (await usage(gate, "etherscan", "second")).remaining == 0


async def test_request_at_00_23_counts_toward_the_minute_that_started_at_00_00(
    store: BudgetStore, clock: FakeClock
) -> None:
    gate = gate_for(store, clock, {"binance": {"minute": 2}})
    clock.advance(23)
    await gate.acquire("binance")
    await gate.acquire("binance")
    clock.advance(36.9)  # 12:00:59.9, still the same minute
    refused = await gate.acquire("binance")
    assert refused.window == "minute"
    assert refused.reset_at == START + timedelta(minutes=1)


async def test_refused_until_the_window_resets_then_allowed_again(
    store: BudgetStore, clock: FakeClock
) -> None:
    gate = gate_for(store, clock, {"binance": {"minute": 2}})
    await gate.acquire("binance")
    await gate.acquire("binance")
    clock.advance(59.999)
    assert not (await gate.acquire("binance")).allowed
    clock.set(START + timedelta(minutes=1))
    assert (await gate.acquire("binance")).allowed
    assert (await usage(gate, "binance", "minute")).used == 1


async def test_heavy_request_that_does_not_fit_is_refused_while_a_light_one_still_fits(
    store: BudgetStore, clock: FakeClock
) -> None:
    gate = gate_for(store, clock, {"binance": {"minute": 100}})
    assert (await gate.acquire("binance", weight=90)).allowed
    assert not (await gate.acquire("binance", weight=20)).allowed
    assert (await gate.acquire("binance", weight=10)).allowed
    assert (await usage(gate, "binance", "minute")).used == 100


async def test_longest_full_window_is_named_when_several_are_full(
    store: BudgetStore, clock: FakeClock
) -> None:
    gate = gate_for(store, clock, {"p": {"second": 1, "hour": 1}})
    await gate.acquire("p")
    refused = await gate.acquire("p")
    assert refused.window == "hour"
    assert refused.reset_at == START + timedelta(hours=1)


async def test_month_window_resets_on_the_first_of_the_next_calendar_month(
    store: BudgetStore, clock: FakeClock
) -> None:
    gate = gate_for(store, clock, {"cmc": {"month": 1}})
    await gate.acquire("cmc")
    refused = await gate.acquire("cmc")
    assert refused.reset_at == datetime(2026, 4, 1, tzinfo=UTC)
    clock.set(datetime(2026, 4, 1, tzinfo=UTC))
    assert (await gate.acquire("cmc")).allowed


async def test_warning_is_emitted_once_when_a_window_crosses_80_percent_in_its_period(
    store: BudgetStore, clock: FakeClock
) -> None:
    gate = gate_for(store, clock, {"coingecko": {"minute": 10}})
    warnings: list[BudgetWarning] = []
    for _ in range(10):
        warnings += (await gate.acquire("coingecko")).warnings
    warnings += (await gate.acquire("coingecko")).warnings  # refused: no second warning
    assert warnings == [
        BudgetWarning(
            provider="coingecko",
            window="minute",
            used=8,
            limit=10,
            percent=80.0,
            reset_at=START + timedelta(minutes=1),
        )
    ]
    clock.advance(60)
    again = [w for _ in range(8) for w in (await gate.acquire("coingecko")).warnings]
    assert [(w.window, w.used) for w in again] == [("minute", 8)]


async def test_report_pushing_past_80_percent_warns_on_the_next_request(
    store: BudgetStore, clock: FakeClock
) -> None:
    gate = gate_for(store, clock, {"binance": {"minute": 6000}})
    await gate.report("binance", "minute", 5900)
    decision = await gate.acquire("binance", weight=2)
    assert [(w.window, w.used) for w in decision.warnings] == [("minute", 5902)]


async def test_reported_usage_overrides_counted_and_is_marked_reported(
    store: BudgetStore, clock: FakeClock
) -> None:
    gate = gate_for(store, clock, {"binance": {"minute": 6000}})
    await gate.acquire("binance", weight=10)
    assert (await usage(gate, "binance", "minute")).source == "counted"
    await gate.report("binance", "minute", 5990)
    reported = await usage(gate, "binance", "minute")
    assert (reported.used, reported.source) == (5990, "reported")
    # Later requests count on top of the provider's figure.
    assert (await gate.acquire("binance", weight=10)).allowed
    assert not (await gate.acquire("binance", weight=1)).allowed
    assert (await usage(gate, "binance", "minute")).used == 6000


async def test_report_lower_than_counted_keeps_the_counted_figure(
    store: BudgetStore, clock: FakeClock
) -> None:
    # A report lags our requests still in flight; lowering the count could overshoot.
    gate = gate_for(store, clock, {"binance": {"minute": 6000}})
    await gate.acquire("binance", weight=50)
    await gate.report("binance", "minute", 20)
    row = await usage(gate, "binance", "minute")
    assert (row.used, row.source) == (50, "reported")


async def test_reported_figure_lasts_only_for_its_period(
    store: BudgetStore, clock: FakeClock
) -> None:
    gate = gate_for(store, clock, {"binance": {"minute": 6000}})
    await gate.report("binance", "minute", 6000)
    assert not (await gate.acquire("binance")).allowed
    clock.advance(60)
    assert (await gate.acquire("binance")).allowed
    row = await usage(gate, "binance", "minute")
    assert (row.used, row.source) == (1, "counted")


async def test_reported_limit_is_enforced_for_a_window_the_catalogue_lacks(
    store: BudgetStore, clock: FakeClock
) -> None:
    gate = gate_for(store, clock, {"bybit": {"day": 100_000}})
    await gate.report("bybit", "second", 99, limit=100)
    assert (await gate.acquire("bybit")).allowed
    refused = await gate.acquire("bybit")
    assert (refused.allowed, refused.window) == (False, "second")
    row = await usage(gate, "bybit", "second")
    assert (row.limit, row.used, row.source) == (100, 100, "reported")


async def test_full_reported_window_with_a_later_reset_blocks_until_that_reset(
    store: BudgetStore, clock: FakeClock
) -> None:
    gate = gate_for(store, clock, {"bybit": {}})
    reset = START + timedelta(seconds=5)
    await gate.report("bybit", "second", 100, limit=100, reset_at=reset)
    clock.advance(2)  # a new second, but the provider said to wait until its reset
    refused = await gate.acquire("bybit")
    assert (refused.allowed, refused.window, refused.reset_at) == (False, None, reset)
    clock.set(reset)
    assert (await gate.acquire("bybit")).allowed


async def test_block_until_refuses_every_request_until_then_without_counting(
    store: BudgetStore, clock: FakeClock
) -> None:
    gate = gate_for(store, clock, {"binance": {"minute": 6000}})
    until = START + timedelta(seconds=30)
    await gate.block_until("binance", until)
    refused = await gate.acquire("binance")
    assert (refused.allowed, refused.reason, refused.window) == (False, "rate_limit_budget", None)
    assert refused.reset_at == until
    assert await gate.blocked_until("binance") == until
    clock.advance(29.9)
    assert not (await gate.acquire("binance")).allowed
    clock.advance(0.1)
    assert (await gate.acquire("binance")).allowed
    assert await gate.blocked_until("binance") is None
    assert (await usage(gate, "binance", "minute")).used == 1


async def test_a_shorter_block_does_not_cut_a_longer_one_short(
    store: BudgetStore, clock: FakeClock
) -> None:
    gate = gate_for(store, clock, {"binance": {"minute": 6000}})
    await gate.block_until("binance", T0 + 120)
    await gate.block_until("binance", T0 + 10)
    clock.advance(60)
    assert not (await gate.acquire("binance")).allowed


async def test_retry_after_header_applied_to_the_gate_blocks_the_provider(
    store: BudgetStore, clock: FakeClock
) -> None:
    gate = gate_for(store, clock, {"binance": {"minute": 6000}})
    headers = {"X-MBX-USED-WEIGHT-1M": "6000", "Retry-After": "90"}
    await gate.apply("binance", usage_from_headers(headers, now=clock()))
    assert (await usage(gate, "binance", "minute")).source == "reported"
    clock.advance(60)  # the minute has reset, but Retry-After has not passed
    assert (await gate.acquire("binance")).reset_at == START + timedelta(seconds=90)
    clock.advance(30)
    assert (await gate.acquire("binance")).allowed


async def test_snapshot_shows_limit_used_remaining_reset_percent_and_source(
    store: BudgetStore, clock: FakeClock
) -> None:
    gate = gate_for(store, clock, {"etherscan": {"second": 3, "day": 100_000}, "fng": {}})
    await gate.acquire("etherscan")
    rows = await gate.snapshot()
    assert [(r.provider, r.window) for r in rows] == [
        ("etherscan", "second"),
        ("etherscan", "day"),
    ]
    day = rows[1]
    assert (day.limit, day.used, day.remaining, day.source) == (100_000, 1, 99_999, "counted")
    assert day.percent == pytest.approx(0.001)
    assert day.reset_at == datetime(2026, 3, 15, tzinfo=UTC)
    assert day.reset_at.tzinfo is UTC
    assert await gate.snapshot("fng") == []


async def test_forecast_gives_when_the_current_pace_fills_the_window(
    store: BudgetStore, clock: FakeClock
) -> None:
    gate = gate_for(store, clock, {"binance": {"minute": 100}})
    await gate.acquire("binance", weight=30)
    clock.advance(15)  # 30 in 15 s: 2 per second, 70 left, full in 35 s
    row = await usage(gate, "binance", "minute")
    assert row.forecast_exhausted_at == START + timedelta(seconds=50)


async def test_forecast_is_none_when_the_pace_does_not_fill_the_window_before_reset(
    store: BudgetStore, clock: FakeClock
) -> None:
    gate = gate_for(store, clock, {"binance": {"minute": 100}})
    await gate.acquire("binance", weight=30)
    clock.advance(30)  # 1 per second: 70 more would take until 12:01:40, after the reset
    assert (await usage(gate, "binance", "minute")).forecast_exhausted_at is None


def test_forecast_of_an_empty_or_full_window() -> None:
    assert forecast_exhaustion(used=0, limit=10, start=0, end=60, now=30) is None
    assert forecast_exhaustion(used=10, limit=10, start=0, end=60, now=30) == 30


def test_unknown_windows_and_bad_weights_are_rejected(clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="fortnight"):
        BudgetGate({"p": {"fortnight": 1}}, clock=clock)
    with pytest.raises(ValueError, match="at least 1"):
        BudgetGate({"p": {"minute": 0}}, clock=clock)


async def test_weight_below_one_is_rejected(clock: FakeClock) -> None:
    gate = BudgetGate({"p": {"minute": 1}}, clock=clock)
    with pytest.raises(ValueError, match="weight"):
        await gate.acquire("p", weight=0)


async def test_gate_defaults_to_the_memory_store_and_the_real_clock() -> None:
    gate = BudgetGate({"p": {"month": 1}})
    assert (await gate.acquire("p")).allowed
    assert not (await gate.acquire("p")).allowed


async def test_a_full_window_announces_its_first_refusal_of_each_period(
    store: BudgetStore, clock: FakeClock
) -> None:
    gate = gate_for(store, clock, {"p": {"second": 1, "minute": 3}})
    decisions = []
    for _ in range(5):
        decisions.append(await gate.acquire("p"))
        clock.advance(1.0)  # past the per-second window, which never announces
    blocks = [d.blocked for d in decisions]
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert blocks[:3] == [None, None, None] and blocks[4] is None
    assert blocks[3] is not None
    assert (blocks[3].window, blocks[3].used, blocks[3].limit) == ("minute", 3, 3)
    assert blocks[3].reset_at == START + timedelta(minutes=1)
    clock.advance(60.0)  # the next minute: a new period, a new announcement once full
    for _ in range(4):
        last = await gate.acquire("p")
        clock.advance(1.0)
    assert last.blocked is not None and last.blocked.reset_at == START + timedelta(minutes=2)
