"""The guard with the catalogue's real exchange tiers, against the simulator: OKX's per-endpoint
limit refuses one endpoint and not its neighbour, Bybit's IP ban blocks the provider for ten
minutes without a Retry-After, and Bybit's headers fill the endpoint's tier."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from apiwatch.budget.gate import BudgetGate
from apiwatch.catalogue.loader import load_catalogue
from apiwatch.domain import Outcome
from apiwatch.probe.breaker import CircuitBreaker
from apiwatch.probe.client import create_session
from apiwatch.probe.engine import ProbeEngine
from apiwatch.probe.guard import ProbeGuard
from apiwatch.probe.retry import RetryPolicy
from apiwatch.runtime.wiring import tier_limits
from apiwatch.simulator import Scenario, Simulator

CATALOGUE = load_catalogue()
# Mid-way through an even second: every probe of a test falls in one 2 s window.
FROZEN = (time.time() // 2) * 2 + 0.5


@pytest.fixture
async def rig() -> AsyncIterator[tuple[Simulator, ProbeEngine, BudgetGate]]:
    limits = {s.id: w for s in CATALOGUE.providers.values() if (w := s.rate_limits.windows())}
    gate = BudgetGate(limits, clock=lambda: FROZEN, **tier_limits(CATALOGUE))
    guard = ProbeGuard(gate=gate, breaker=CircuitBreaker(failure_threshold=50), keys={})
    async with Simulator(port=0) as sim, create_session() as http:
        engine = ProbeEngine(
            session=http, keys={}, upstream_override=sim.url, guard=guard, retry=RetryPolicy()
        )
        yield sim, engine, gate


def sent(sim: Simulator, provider: str) -> int:
    return sim.stats()["providers"].get(provider, {}).get("requests", 0)


async def test_okx_ticker_tier_refuses_the_21st_request_in_2_s_but_not_the_books(rig) -> None:
    sim, engine, _ = rig
    okx = CATALOGUE.providers["okx"]
    for _ in range(20):
        [result] = await engine.probe(okx, "ticker")
        assert result.outcome is Outcome.OK, result.reason
    [refused] = await engine.probe(okx, "ticker")
    assert refused.outcome is Outcome.SKIPPED
    assert refused.reason.startswith("rate_limit_budget (endpoint ticker 2s window full)")
    assert sent(sim, "okx") == 20
    [books] = await engine.probe(okx, "books")
    assert books.outcome is Outcome.OK
    assert sent(sim, "okx") == 21


async def test_bybit_403_ban_blocks_the_provider_ten_minutes_without_retry_after(rig) -> None:
    sim, engine, gate = rig
    bybit = CATALOGUE.providers["bybit"]
    sim.set_scenario("bybit", Scenario("rate_limited", {"http_status": 403}))
    result = (await engine.probe(bybit, "orderbook"))[-1]
    assert result.outcome is Outcome.RATE_LIMITED and result.status_code == 403
    blocked = await gate.blocked_until("bybit")
    assert blocked is not None
    assert blocked.timestamp() - time.time() == pytest.approx(600, abs=30)
    before = sent(sim, "bybit")
    [skipped] = await engine.probe(bybit, "tickers")  # another endpoint: the ban is per IP
    assert skipped.outcome is Outcome.SKIPPED and "(Retry-After)" in skipped.reason
    assert sent(sim, "bybit") == before


async def test_bybit_limit_headers_fill_the_answering_endpoint_tier(rig) -> None:
    _, engine, gate = rig
    bybit = CATALOGUE.providers["bybit"]
    [result] = await engine.probe(bybit, "orderbook")
    assert result.outcome is Outcome.OK
    rows = {(u.tier, u.scope, u.window): u for u in await gate.snapshot("bybit")}
    orderbook = rows[("endpoint", "orderbook", "second")]
    assert (orderbook.limit, orderbook.source) == (100, "reported")
    assert rows[("ip", "", "5s")].used == 1
    assert ("endpoint", "tickers", "second") not in rows
