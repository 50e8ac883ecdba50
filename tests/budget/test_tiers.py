"""Hierarchical budgets: the ip tier shared by every endpoint, each endpoint's own tier, each
key's own tier, and windows of any length in seconds; over the memory and the Redis store."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apiwatch.budget.gate import BudgetGate
from apiwatch.budget.headers import usage_from_headers
from apiwatch.budget.stores import BudgetStore
from apiwatch.budget.windows import check_window, period, window_seconds
from tests.budget.conftest import T0, FakeClock


def test_a_window_of_n_seconds_is_aligned_to_multiples_of_n() -> None:
    assert (period("2s", T0 + 1.5).start, period("2s", T0 + 1.5).end) == (T0, T0 + 2)
    assert period("2s", T0 + 2).start == T0 + 2
    assert period("5s", T0 + 7).start == T0 + 5
    assert window_seconds("2s") == 2.0 and window_seconds("minute") == 60.0


@pytest.mark.parametrize("bad", ["0s", "2", "s", "-2s", "2.5s", "fortnight"])
def test_a_malformed_window_name_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="unknown rate-limit window"):
        check_window(bad)


async def test_the_shared_ip_tier_blocks_two_endpoints_at_once(
    store: BudgetStore, clock: FakeClock
) -> None:
    # Bybit's IP limit covers every endpoint: three requests fill it, whichever endpoint.
    gate = BudgetGate({"bybit": {"5s": 3}}, store, clock=clock)
    assert (await gate.acquire("bybit", endpoint="tickers")).allowed
    assert (await gate.acquire("bybit", endpoint="orderbook")).allowed
    assert (await gate.acquire("bybit", endpoint="tickers")).allowed
    for endpoint in ("tickers", "orderbook"):
        refused = await gate.acquire("bybit", endpoint=endpoint)
        assert not refused.allowed
        assert (refused.tier, refused.window) == ("ip", "5s")
        assert refused.reset_at == datetime.fromtimestamp(T0 + 5, UTC)
    clock.advance(5)
    assert (await gate.acquire("bybit", endpoint="orderbook")).allowed


async def test_endpoint_tiers_are_counted_apart_and_a_full_one_refuses_only_its_endpoint(
    store: BudgetStore, clock: FakeClock
) -> None:
    # OKX: the ticker allows 2 per 2 s here, books 3; neither eats the other's budget.
    gate = BudgetGate(
        {},
        store,
        clock=clock,
        endpoint_limits={"okx": {"ticker": {"2s": 2}, "books": {"2s": 3}}},
    )
    for _ in range(2):
        assert (await gate.acquire("okx", endpoint="ticker")).allowed
    refused = await gate.acquire("okx", endpoint="ticker")
    assert not refused.allowed
    assert (refused.tier, refused.scope, refused.window) == ("endpoint", "ticker", "2s")
    for _ in range(3):
        assert (await gate.acquire("okx", endpoint="books")).allowed
    assert not (await gate.acquire("okx", endpoint="books")).allowed
    clock.advance(2)
    assert (await gate.acquire("okx", endpoint="ticker")).allowed


async def test_a_refusal_in_one_tier_counts_the_request_in_no_tier(
    store: BudgetStore, clock: FakeClock
) -> None:
    gate = BudgetGate(
        {"okx": {"minute": 100}},
        store,
        clock=clock,
        endpoint_limits={"okx": {"ticker": {"2s": 1}}},
    )
    assert (await gate.acquire("okx", endpoint="ticker")).allowed
    assert not (await gate.acquire("okx", endpoint="ticker")).allowed
    assert not (await gate.acquire("okx", endpoint="ticker")).allowed
    ip = [u for u in await gate.snapshot("okx") if u.tier == "ip"]
    assert [(u.window, u.used) for u in ip] == [("minute", 1)]


async def test_each_key_has_its_own_tier_under_the_shared_ip_tier(
    store: BudgetStore, clock: FakeClock
) -> None:
    gate = BudgetGate(
        {"bybit": {"minute": 3}}, store, clock=clock, key_limits={"bybit": {"second": 1}}
    )
    assert (await gate.acquire("bybit", key="BYBIT_KEY_1")).allowed
    refused = await gate.acquire("bybit", key="BYBIT_KEY_1")
    assert (refused.allowed, refused.tier, refused.scope) == (False, "key", "BYBIT_KEY_1")
    assert (await gate.acquire("bybit", key="BYBIT_KEY_2")).allowed
    clock.advance(1)
    assert (await gate.acquire("bybit", key="BYBIT_KEY_2")).allowed
    # The ip tier (3 per minute) is full now for every key.
    refused = await gate.acquire("bybit", key="BYBIT_KEY_3")
    assert (refused.allowed, refused.tier, refused.window) == (False, "ip", "minute")


async def test_the_snapshot_shows_every_tier_ip_first(store: BudgetStore, clock: FakeClock) -> None:
    gate = BudgetGate(
        {"okx": {"minute": 100}},
        store,
        clock=clock,
        endpoint_limits={"okx": {"ticker": {"2s": 20}, "books": {"2s": 40}}},
    )
    await gate.acquire("okx", endpoint="books")
    rows = [(u.tier, u.scope, u.window, u.limit, u.used) for u in await gate.snapshot("okx")]
    assert rows == [
        ("ip", "", "minute", 100, 1),
        ("endpoint", "books", "2s", 40, 1),
        ("endpoint", "ticker", "2s", 20, 0),
    ]


async def test_bybit_headers_fill_the_endpoint_tier_not_the_ip_tier(
    store: BudgetStore, clock: FakeClock
) -> None:
    gate = BudgetGate({"bybit": {"5s": 600}}, store, clock=clock)
    headers = {"X-Bapi-Limit": "2", "X-Bapi-Limit-Status": "0"}
    await gate.apply("bybit", usage_from_headers(headers, now=clock()), endpoint="orderbook")
    refused = await gate.acquire("bybit", endpoint="orderbook")
    assert (refused.allowed, refused.tier, refused.scope) == (False, "endpoint", "orderbook")
    assert (await gate.acquire("bybit", endpoint="tickers")).allowed
    endpoint_rows = [u for u in await gate.snapshot("bybit") if u.tier == "endpoint"]
    assert [(u.scope, u.window, u.limit, u.source) for u in endpoint_rows] == [
        ("orderbook", "second", 2, "reported")
    ]
