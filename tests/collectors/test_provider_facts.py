"""Collectors against example bodies taken from the vendors' own API docs (their shapes, types
and units) and exact decimal arithmetic on what they return. The catalogue entries these
collectors serve are in apiwatch/catalogue/; docs/providers.md describes the format."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from apiwatch.collectors.base import CollectorError, DataPoint
from apiwatch.collectors.registry import get_collector


def run(name: str, body: Any, category: str = "market_data") -> dict[str, DataPoint]:
    return {p.item: p for p in get_collector(name)(body, provider="p", category=category)}


def test_coingecko_example_float_price_is_the_decimal_the_provider_wrote() -> None:
    # The SimplePrice example from CoinGecko's OpenAPI spec: prices and volumes as JSON floats.
    body = {
        "bitcoin": {
            "usd": 67187.3358936566,
            "usd_market_cap": 1317802988326.25,
            "usd_24h_vol": 31260929299.5248,
            "usd_24h_change": 3.63727894677354,
            "last_updated_at": 1711356300,
        }
    }
    btc = run("market.coingecko_simple_price", body)["BTC-USD"]
    assert btc.value == Decimal("67187.3358936566")
    assert btc.values == {
        "volume_24h_usd": "31260929299.5248",
        "change_24h_pct": "3.63727894677354",
        "market_cap_usd": "1317802988326.25",
        "quote": "USD",
    }
    assert btc.data_timestamp == datetime(2024, 3, 25, 8, 45, tzinfo=UTC)


def test_coingecko_null_24h_change_is_left_out_not_rejected() -> None:
    # The docs say a null change means the price is stale; the price itself is still data.
    body = {"ethereum": {"usd": 3500.1, "usd_24h_change": None, "last_updated_at": 1711356300}}
    eth = run("market.coingecko_simple_price", body)["ETH-USD"]
    assert eth.value == Decimal("3500.1")
    assert eth.values is not None and "change_24h_pct" not in eth.values


def test_coinmarketcap_example_reads_quote_usd_and_its_iso_time() -> None:
    # CoinMarketCap's documented standard response: a status object, quotes keyed by id.
    body = {
        "status": {"timestamp": "2019-08-16T14:17:17.209Z", "error_code": 0, "credit_count": 1},
        "data": {
            "1": {
                "id": 1,
                "symbol": "BTC",
                "last_updated": "2019-08-16T14:16:35.000Z",
                "quote": {
                    "USD": {
                        "price": 10147.11,
                        "volume_24h": 21086872338.1,
                        "percent_change_24h": 1.09,
                        "market_cap": 181429394719.1,
                        "last_updated": "2019-08-16T14:16:35.000Z",
                    }
                },
            }
        },
    }
    btc = run("market.coinmarketcap_quotes", body)["BTC-USD"]
    assert btc.value == Decimal("10147.11")
    assert btc.values is not None and btc.values["volume_24h_usd"] == "21086872338.1"
    assert btc.data_timestamp == datetime(2019, 8, 16, 14, 16, 35, tzinfo=UTC)


def test_coinmarketcap_error_code_in_a_200_body_is_rejected() -> None:
    body = {"status": {"error_code": 1008, "error_message": "rate limit"}, "data": {}}
    with pytest.raises(CollectorError, match="error_code"):
        run("market.coinmarketcap_quotes", body)


def test_cryptocompare_error_in_a_200_body_is_rejected() -> None:
    # CryptoCompare sends its rate-limit error in a body that arrives with HTTP 200.
    body = {"Response": "Error", "Message": "You are over your rate limit", "Type": 99, "Data": {}}
    with pytest.raises(CollectorError, match="Response is Error"):
        run("market.cryptocompare_pricemultifull", body)


def test_binance_string_prices_stay_exact_through_arithmetic() -> None:
    body = [
        {"symbol": "BTCUSDT", "lastPrice": "0.1", "closeTime": 1_714_568_400_123},
        {"symbol": "ETHUSDT", "lastPrice": "0.2", "closeTime": 1_714_568_400_123},
    ]
    points = run("market.binance_ticker_24hr", body)
    btc, eth = points["BTC-USD"].value, points["ETH-USD"].value
    assert btc is not None and eth is not None
    assert btc + eth == Decimal("0.3")  # 0.1 + 0.2 through float is 0.30000000000000004
    assert points["BTC-USD"].data_timestamp == datetime(2024, 5, 1, 13, 0, 0, 123000, tzinfo=UTC)


def test_float_prices_convert_by_their_shortest_repr_not_their_binary_value() -> None:
    points = run("market.coingecko_simple_price", {"bitcoin": {"usd": 0.1}})
    assert points["BTC-USD"].value == Decimal("0.1")
    assert points["BTC-USD"].value != Decimal.from_float(0.1)


def test_binance_single_symbol_object_is_accepted_like_a_list() -> None:
    body = {"symbol": "BNBUSDT", "lastPrice": "600.12000000", "quoteVolume": "1.5"}
    bnb = run("market.binance_ticker_24hr", body)["BNB-USD"]
    assert bnb.value == Decimal("600.12000000")
    assert bnb.data_timestamp is None  # no closeTime sent: no time invented


def test_etherscan_ethprice_example_timestamp_is_unix_seconds_as_a_string() -> None:
    # The example from Etherscan's ethprice docs: every value is a string.
    body = {
        "status": "1",
        "message": "OK",
        "result": {
            "ethbtc": "0.0368",
            "ethbtc_timestamp": "1759139509",
            "ethusd": "4129.30",
            "ethusd_timestamp": "1759139509",
        },
    }
    eth = run("explorers.eth_price", body, "blockchain_explorers")["ETH-USD"]
    assert str(eth.value) == "4129.30"
    assert eth.values == {"quote": "USD", "btc": "0.0368"}
    assert eth.data_timestamp == datetime.fromtimestamp(1759139509, UTC)


def test_etherscan_supply_example_in_wei_becomes_exact_ether() -> None:
    body = {"status": "1", "message": "OK", "result": "122373866217800000000000000"}
    supply = run("explorers.eth_supply", body, "blockchain_explorers")["ETH-supply"]
    assert supply.value == Decimal("122373866.2178")


def test_etherscan_gas_oracle_strings_are_gwei_and_carry_no_time() -> None:
    body = {
        "status": "1",
        "message": "OK",
        "result": {
            "LastBlock": "21000000",
            "SafeGasPrice": "0.61",
            "ProposeGasPrice": "0.72",
            "FastGasPrice": "0.95",
            "suggestBaseFee": "0.567",
            "gasUsedRatio": "0.45,0.51,0.39,0.99,0.44",
        },
    }
    points = run("explorers.eth_gas_oracle", body, "blockchain_explorers")
    assert points["ETH-gas"].value == Decimal("0.72")
    assert points["ETH-gas"].values is not None
    assert points["ETH-gas"].values["gas_used_ratio"] == ["0.45", "0.51", "0.39", "0.99", "0.44"]
    assert points["ETH-last_block"].value == 21_000_000
    assert all(p.data_timestamp is None for p in points.values())


@pytest.mark.parametrize(
    "result",
    [
        "Max rate limit reached, please use API Key for higher rate limit",
        "Free API access is not supported for this chain. Please upgrade your api plan",
    ],
)
def test_etherscan_notok_body_is_rejected_without_quoting_it(result: str) -> None:
    body = {"status": "0", "message": "NOTOK", "result": result}
    with pytest.raises(CollectorError) as caught:
        run("explorers.bsc_gas_oracle", body, "blockchain_explorers")
    assert result not in str(caught.value) and "status" in str(caught.value)


def test_fear_greed_example_value_timestamp_and_classification_are_strings() -> None:
    # Alternative.me's documented example: value, timestamp and time_until_update are strings.
    body = {
        "name": "Fear and Greed Index",
        "data": [
            {
                "value": "54",
                "value_classification": "Neutral",
                "timestamp": "1713628800",
                "time_until_update": "3600",
            }
        ],
        "metadata": {"error": None},
    }
    point = run("sentiment.fear_greed", body, "sentiment")["fear_greed"]
    assert point.value == 54 and point.text == "Neutral"
    # 1713628800 is easy to misread as "2024-04-20 00:00 UTC"; it is 16:00 UTC, which is
    # midnight in UTC+8 (where the index rolls over).
    assert point.data_timestamp == datetime(2024, 4, 20, 16, tzinfo=UTC)
    assert point.values == {"classification": "Neutral", "time_until_update_s": 3600}


def test_fear_greed_with_a_history_takes_the_newest_entry() -> None:
    body = {
        "data": [
            {"value": "40", "value_classification": "Fear", "timestamp": "1713542400"},
            {"value": "54", "value_classification": "Neutral", "timestamp": "1713628800"},
        ],
        "metadata": {"error": None},
    }
    assert run("sentiment.fear_greed", body, "sentiment")["fear_greed"].value == 54


def test_fear_greed_metadata_error_is_rejected() -> None:
    body = {"data": [], "metadata": {"error": "Rate limit exceeded"}}
    with pytest.raises(CollectorError, match=r"metadata\.error"):
        run("sentiment.fear_greed", body, "sentiment")


def test_newsapi_example_article_and_removed_placeholders() -> None:
    # A response in NewsAPI's documented shape, plus the placeholder NewsAPI leaves for
    # withdrawn articles.
    article = {
        "source": {"id": None, "name": "newsBTC"},
        "author": "Cole Petersen",
        "title": "Bitcoin rallies",
        "url": "https://www.newsbtc.com/2020/06/06/bitcoin-rallies/",
        "publishedAt": "2020-06-06T01:00:58Z",
    }
    removed = {
        "source": {"id": None, "name": "[Removed]"},
        "title": "[Removed]",
        "url": "https://removed.com",
        "publishedAt": "1970-01-01T00:00:00Z",
    }
    body = {"status": "ok", "totalResults": 3, "articles": [article, removed, dict(article)]}
    points = run("news.newsapi_articles", body, "news")
    assert list(points) == ["news:https://www.newsbtc.com/2020/06/06/bitcoin-rallies/"]
    point = next(iter(points.values()))
    assert point.text == "Bitcoin rallies"
    assert point.values is not None and point.values["source"] == "newsBTC"
    assert point.data_timestamp == datetime(2020, 6, 6, 1, 0, 58, tzinfo=UTC)


def test_newsapi_error_status_is_rejected() -> None:
    body = {"status": "error", "code": "apiKeyInvalid", "message": "Your API key is invalid"}
    with pytest.raises(CollectorError, match="status"):
        run("news.newsapi_articles", body, "news")


def test_cryptopanic_v1_example_uses_the_post_url_and_microsecond_time() -> None:
    # CryptoPanic's v1 post shape: no original_url, and `currencies` rather than `instruments`.
    post = {
        "kind": "news",
        "domain": "coinmarketcap.com",
        "source": {"domain": "coinmarketcap.com", "title": "CoinMarketCap", "path": None},
        "title": "NEO rises",
        "published_at": "2018-01-18T09:45:28.965353Z",
        "id": 841770,
        "url": "https://cryptopanic.com/news/841770/neo-rises",
        "currencies": [{"code": "NEO", "title": "NEO", "slug": "neo"}],
    }
    body = {"count": 100, "next": None, "previous": None, "results": [post]}
    point = run("news.cryptopanic_posts", body, "news")[
        "news:https://cryptopanic.com/news/841770/neo-rises"
    ]
    assert point.values is not None and point.values["currencies"] == ["NEO"]
    assert point.values["source"] == "CoinMarketCap"
    assert point.data_timestamp == datetime(2018, 1, 18, 9, 45, 28, 965353, tzinfo=UTC)


def test_an_empty_news_page_is_no_points_not_an_error() -> None:
    assert run("news.cryptopanic_posts", {"results": []}, "news") == {}
    assert run("news.newsapi_articles", {"status": "ok", "articles": []}, "news") == {}


def test_a_market_payload_without_any_of_our_assets_is_rejected() -> None:
    with pytest.raises(CollectorError, match="no BTC, ETH or BNB"):
        run("market.coingecko_simple_price", {"solana": {"usd": 150.0}})
