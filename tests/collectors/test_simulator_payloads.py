"""Every collector against the simulator's payloads, fetched by the real probe engine."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from apiwatch.collectors.base import DataPoint
from apiwatch.collectors.registry import get_collector
from apiwatch.probe.assertions import extract_timestamp
from apiwatch.simulator.market import ASSETS

from .conftest import CATALOGUE, Fetch

DATA_ENDPOINTS = [
    (spec.id, name)
    for spec in CATALOGUE.providers.values()
    for name, endpoint in spec.endpoints.items()
    if endpoint.collector
]
MARKET = ["coingecko", "coinmarketcap", "cryptocompare", "binance"]
# A provider's first data endpoint (Binance's ticker, not its order book).
ENDPOINT_OF = {pid: name for pid, name in reversed(DATA_ENDPOINTS)}


def run(provider: str, endpoint: str, body: Any) -> list[DataPoint]:
    spec = CATALOGUE.providers[provider]
    name = spec.endpoints[endpoint].collector
    assert name is not None
    return get_collector(name)(body, provider=provider, category=spec.category.value)


async def fetch_and_collect(
    payload: Fetch, provider: str, endpoint: str
) -> tuple[Any, list[DataPoint]]:
    body = await payload(provider, endpoint)
    return body, run(provider, endpoint, body)


async def collect(payload: Fetch, provider: str, endpoint: str) -> list[DataPoint]:
    return (await fetch_and_collect(payload, provider, endpoint))[1]


@pytest.mark.parametrize(("provider", "endpoint"), DATA_ENDPOINTS)
async def test_every_collector_turns_its_simulator_payload_into_storable_points(
    payload: Fetch, provider: str, endpoint: str
) -> None:
    points = await collect(payload, provider, endpoint)
    category = CATALOGUE.providers[provider].category.value
    assert points
    for point in points:
        assert (point.provider, point.category) == (provider, category)
        assert 0 < len(point.item) <= 1024
        assert point.value is None or isinstance(point.value, Decimal)
        assert point.value is not None or point.text is not None
        # `values` goes into a JSON column as is: no Decimal, no datetime inside.
        json.dumps(point.values)
        if point.data_timestamp is not None:
            assert point.data_timestamp.tzinfo is not None
            age = datetime.now(UTC) - point.data_timestamp
            assert timedelta(minutes=-1) < age < timedelta(days=1), point.item
    assert len({p.item for p in points}) == len(points)


@pytest.mark.parametrize(("provider", "endpoint"), DATA_ENDPOINTS)
async def test_collector_data_time_agrees_with_the_catalogue_timestamp_spec(
    payload: Fetch, provider: str, endpoint: str
) -> None:
    spec = CATALOGUE.providers[provider].endpoints[endpoint]
    body = await payload(provider, endpoint)
    points = get_collector(spec.collector or "")(
        body, provider=provider, category=CATALOGUE.providers[provider].category.value
    )
    stamps = [p.data_timestamp for p in points if p.data_timestamp is not None]
    if spec.timestamp is None:
        assert stamps == [], "an endpoint without a timestamp spec must not invent one"
        return
    expected = extract_timestamp(spec.timestamp, body)
    assert expected is not None and stamps
    assert abs((max(stamps) - expected).total_seconds()) < 1


@pytest.mark.parametrize("provider", MARKET)
async def test_market_collectors_give_btc_eth_bnb_in_usd_near_the_simulated_price(
    payload: Fetch, provider: str
) -> None:
    points = {p.item: p for p in await collect(payload, provider, ENDPOINT_OF[provider])}
    assert set(points) == {"BTC-USD", "ETH-USD", "BNB-USD"}
    for item, point in points.items():
        base = Decimal(repr(ASSETS[item.split("-")[0]].price_usd))
        assert point.value is not None
        assert abs(point.value - base) / base < Decimal("0.002"), (item, point.value)
        assert point.values is not None
        assert Decimal(point.values["volume_24h_usd"]) > 0
        assert Decimal(point.values["change_24h_pct"]) == Decimal(
            repr(ASSETS[item.split("-")[0]].change_24h_pct)
        )
        assert point.data_timestamp is not None


async def test_binance_usdt_pairs_count_as_usd_and_say_so(payload: Fetch) -> None:
    points = await collect(payload, "binance", "ticker_24hr")
    assert {p.item for p in points} == {"BTC-USD", "ETH-USD", "BNB-USD"}
    assert all(p.values and p.values["quote"] == "USDT" for p in points)


async def test_binance_prices_keep_the_eight_places_binance_sends(payload: Fetch) -> None:
    body, points = await fetch_and_collect(payload, "binance", "ticker_24hr")
    btc = next(t for t in body if t["symbol"] == "BTCUSDT")
    price = {p.item: p.value for p in points}["BTC-USD"]
    # The string as sent, digit for digit: no float on the way.
    assert str(price) == btc["lastPrice"]
    assert price is not None and price.as_tuple().exponent == -8


@pytest.mark.parametrize(("provider", "chain"), [("etherscan", "ETH"), ("bscscan", "BSC")])
async def test_gas_oracles_give_gwei_tiers_and_no_data_timestamp(
    payload: Fetch, provider: str, chain: str
) -> None:
    points = {p.item: p for p in await collect(payload, provider, "gas_oracle")}
    gas = points[f"{chain}-gas"]
    assert gas.values is not None and gas.values["unit"] == "gwei"
    safe, propose, fast = (Decimal(gas.values[k]) for k in ("safe", "propose", "fast"))
    assert 0 < safe <= propose <= fast
    assert gas.value == propose
    assert len(gas.values["gas_used_ratio"]) == 5
    assert gas.data_timestamp is None  # the oracle has no time; none is invented
    last_block = points[f"{chain}-last_block"]
    assert last_block.value == gas.values["last_block"] > 1_000_000


async def test_etherscan_price_and_supply_are_exact_and_price_is_dated(payload: Fetch) -> None:
    [price] = await collect(payload, "etherscan", "eth_price")
    assert price.item == "ETH-USD" and price.category == "blockchain_explorers"
    assert price.value is not None and price.value.as_tuple().exponent == -2  # "3500.12"
    assert price.data_timestamp is not None
    [supply] = await collect(payload, "etherscan", "eth_supply")
    assert supply.item == "ETH-supply" and supply.values is not None
    assert supply.value == Decimal(supply.values["wei"]) / Decimal(10**18)
    assert 100_000_000 < supply.value < 200_000_000


async def test_bscscan_bnb_price_reads_etherscan_field_names(payload: Fetch) -> None:
    [price] = await collect(payload, "bscscan", "bnb_price")
    assert price.item == "BNB-USD"
    assert price.value is not None and abs(price.value - 600) < 2


async def test_tronscan_latest_block_has_its_number_and_ms_time(payload: Fetch) -> None:
    body, [block] = await fetch_and_collect(payload, "tronscan", "latest_block")
    assert block.item == "TRX-last_block"
    assert block.value == body["data"][0]["number"]
    assert block.data_timestamp is not None
    assert block.data_timestamp.timestamp() * 1000 == pytest.approx(
        body["data"][0]["timestamp"], abs=1
    )


async def test_cryptopanic_posts_are_one_item_per_article_url(payload: Fetch) -> None:
    body, points = await fetch_and_collect(payload, "cryptopanic", "posts")
    urls = [post["original_url"] for post in body["results"]]
    # The simulator's feed repeats stories: twenty posts, fewer distinct articles.
    assert len(set(urls)) < len(urls)
    assert [p.item for p in points] == [f"news:{u}" for u in dict.fromkeys(urls)]
    first = points[0]
    assert first.text == body["results"][0]["title"]
    assert first.values is not None
    assert first.values["post_url"] == body["results"][0]["url"]
    assert first.values["source"] == body["results"][0]["source"]["title"]
    assert first.values["currencies"] == [c["code"] for c in body["results"][0]["instruments"]]
    assert first.data_timestamp == datetime.fromisoformat(
        body["results"][0]["published_at"].replace("Z", "+00:00")
    )


async def test_newsapi_articles_carry_title_url_source_and_published_time(
    payload: Fetch,
) -> None:
    body, points = await fetch_and_collect(payload, "newsapi", "everything")
    assert len(points) == len(body["articles"]) == 20
    article, point = body["articles"][0], points[0]
    assert point.item == f"news:{article['url']}" and point.text == article["title"]
    assert point.values is not None and point.values["source"] == article["source"]["name"]
    assert point.data_timestamp == datetime.fromisoformat(
        article["publishedAt"].replace("Z", "+00:00")
    )


async def test_fear_greed_value_and_classification_with_the_payload_time(
    payload: Fetch,
) -> None:
    body, [point] = await fetch_and_collect(payload, "alternative_me", "fear_greed")
    entry = body["data"][0]
    assert point.item == "fear_greed"
    assert point.value == int(entry["value"]) and 0 <= point.value <= 100
    assert point.text == entry["value_classification"]
    assert point.data_timestamp is not None
    assert point.data_timestamp.timestamp() == int(entry["timestamp"])


async def test_onchain_placeholders_collect_when_fetched(payload: Fetch) -> None:
    [graph] = await collect(payload, "thegraph", "meta")
    assert graph.item == "subgraph-last_block" and graph.value is not None
    chair = {p.item: p for p in await collect(payload, "blockchair", "bitcoin_stats")}
    assert set(chair) == {"BTC-last_block", "BTC-mempool_tx"}
    assert chair["BTC-last_block"].data_timestamp is not None
    [close] = await collect(payload, "glassnode", "btc_price_close")
    assert close.item == "BTC-price_close" and close.value is not None
    assert abs(close.value - 67_000) < 500
    assert close.data_timestamp is not None
    assert time.time() - close.data_timestamp.timestamp() < 900  # i=10m
