"""Collected data judged end to end against simulator scenarios: freshness with `stale`
timestamps, consensus with one provider's prices skewed by `divergent`, and an on-chain
placeholder enabled by a user catalogue file."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from apiwatch.analysis.consensus import consensus
from apiwatch.analysis.freshness import DEFAULT_TTL_S, Freshness, judge
from apiwatch.catalogue.loader import load_catalogue
from apiwatch.collectors.base import DataPoint
from apiwatch.collectors.registry import get_collector
from apiwatch.domain import Outcome
from apiwatch.probe.engine import ProbeEngine
from apiwatch.simulator import Scenario, Simulator

from .conftest import CATALOGUE, Fetch

DATED = [
    (spec.id, name)
    for spec in CATALOGUE.providers.values()
    for name, endpoint in spec.endpoints.items()
    if endpoint.collector and endpoint.timestamp is not None
]
MARKET = {"coingecko": "simple_price", "coinmarketcap": "quotes"} | {
    "cryptocompare": "pricemultifull",
    "binance": "ticker_24hr",
}
TEN_DAYS_S = 10 * 86_400


async def collect(payload: Fetch, provider: str, endpoint: str) -> list[DataPoint]:
    spec = CATALOGUE.providers[provider]
    body = await payload(provider, endpoint)
    return get_collector(spec.endpoints[endpoint].collector or "")(
        body, provider=provider, category=spec.category.value
    )


async def newest_freshness(payload: Fetch, provider: str, endpoint: str) -> Freshness:
    points = await collect(payload, provider, endpoint)
    newest = max(p.data_timestamp for p in points if p.data_timestamp is not None)
    ttl = DEFAULT_TTL_S[CATALOGUE.providers[provider].category.value]
    return judge(newest, now=datetime.now(UTC), ttl_s=ttl)


@pytest.mark.parametrize(("provider", "endpoint"), DATED)
async def test_healthy_simulator_data_is_fresh(
    payload: Fetch, provider: str, endpoint: str
) -> None:
    assert await newest_freshness(payload, provider, endpoint) is Freshness.FRESH


@pytest.mark.parametrize(("provider", "endpoint"), DATED)
async def test_stale_scenario_data_is_judged_stale_from_the_payload_time(
    sim: Simulator, payload: Fetch, provider: str, endpoint: str
) -> None:
    sim.set_scenario(provider, Scenario("stale", {"age_s": TEN_DAYS_S}))
    assert await newest_freshness(payload, provider, endpoint) is Freshness.STALE


@pytest.mark.parametrize("provider", sorted(MARKET))
async def test_market_data_one_and_a_half_ttls_old_is_aging(
    sim: Simulator, payload: Fetch, provider: str
) -> None:
    sim.set_scenario(provider, Scenario("stale", {"age_s": 1.5 * DEFAULT_TTL_S["market_data"]}))
    assert await newest_freshness(payload, provider, MARKET[provider]) is Freshness.AGING


@pytest.mark.parametrize("provider", ["etherscan", "bscscan"])
async def test_gas_oracle_stays_unknown_under_the_stale_scenario(
    sim: Simulator, payload: Fetch, provider: str
) -> None:
    sim.set_scenario(provider, Scenario("stale", {"age_s": TEN_DAYS_S}))
    points = await collect(payload, provider, "gas_oracle")
    judged = {judge(p.data_timestamp, now=datetime.now(UTC), ttl_s=900.0) for p in points}
    assert judged == {Freshness.UNKNOWN}


async def market_prices(payload: Fetch) -> dict[str, dict[str, Decimal]]:
    """Item → provider → price, from all four market providers."""
    by_item: dict[str, dict[str, Decimal]] = {}
    for provider, endpoint in MARKET.items():
        for point in await collect(payload, provider, endpoint):
            assert point.value is not None
            by_item.setdefault(point.item, {})[provider] = point.value
    return by_item


async def test_healthy_market_providers_agree_within_the_default_threshold(
    payload: Fetch,
) -> None:
    by_item = await market_prices(payload)
    assert set(by_item) == {"BTC-USD", "ETH-USD", "BNB-USD"}
    for item, prices in by_item.items():
        result = consensus(prices, item=item)
        assert len(result.providers) == 4 and result.quorum
        assert result.divergent == [], (item, result.providers)


@pytest.mark.parametrize(("provider", "pct"), [("coingecko", 5), ("binance", -3)])
async def test_divergent_scenario_flags_the_skewed_provider_with_roughly_its_skew(
    sim: Simulator, payload: Fetch, provider: str, pct: float
) -> None:
    sim.set_scenario(provider, Scenario("divergent", {"pct": pct}))
    for item, prices in (await market_prices(payload)).items():
        result = consensus(prices, item=item)
        assert result.divergent == [provider], item
        deviation = result.providers[provider].deviation_pct
        assert abs(deviation - Decimal(pct)) < Decimal("0.5"), (item, deviation)
        others = [d for p, d in result.providers.items() if p != provider]
        assert all(abs(d.deviation_pct) < Decimal("0.2") for d in others)


async def test_with_two_providers_a_divergence_flags_both_by_the_same_amount(
    sim: Simulator, payload: Fetch
) -> None:
    sim.set_scenario("coingecko", Scenario("divergent", {"pct": 5}))
    gecko = {p.item: p.value for p in await collect(payload, "coingecko", "simple_price")}
    compare = {p.item: p.value for p in await collect(payload, "cryptocompare", "pricemultifull")}
    prices = {"coingecko": gecko["BTC-USD"], "cryptocompare": compare["BTC-USD"]}
    assert all(isinstance(v, Decimal) for v in prices.values())
    result = consensus(prices, item="BTC-USD")  # type: ignore[arg-type]
    assert not result.quorum
    assert result.divergent == ["coingecko", "cryptocompare"]
    high, low = result.providers["coingecko"], result.providers["cryptocompare"]
    assert high.deviation_pct == low.deviation_pct.copy_negate()
    assert Decimal("2") < high.deviation_pct < Decimal("3")


async def test_a_user_catalogue_file_enables_an_onchain_placeholder_that_collects(
    tmp_path: Path, engine: ProbeEngine
) -> None:
    """What the onchain module docstring tells users to do, done."""
    ours = Path(CATALOGUE.sources["blockchair"]).read_text()
    assert "enabled: false" in ours
    (tmp_path / "blockchair.yaml").write_text(ours.replace("enabled: false", "enabled: true"))
    catalogue = load_catalogue(user_dir=tmp_path)
    spec = catalogue.providers["blockchair"]
    assert spec.enabled and spec in catalogue.enabled()
    [name] = [n for n, e in spec.endpoints.items() if e.collector]
    [result] = await engine.probe(spec, name)
    assert result.outcome is Outcome.OK, result.reason
    points = get_collector(spec.endpoints[name].collector or "")(
        result.payload, provider=spec.id, category=spec.category.value
    )
    assert {p.item for p in points} == {"BTC-last_block", "BTC-mempool_tx"}
