"""Healthy answers have each provider's real field names, value types, timestamp units and
headers, and prices agree across providers."""

from __future__ import annotations

import json
import time
from datetime import datetime

import pytest

from .support import Fetch

CMC_KEY = {"X-CMC_PRO_API_KEY": "k"}
NEWS_KEY = {"X-Api-Key": "k"}
BTC, ETH, BNB = 67_000, 3_500, 600


def iso_age(value: str) -> float:
    return time.time() - datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def near(value: float, target: float, pct: float = 0.1) -> bool:
    return abs(value - target) <= target * pct / 100


async def test_coingecko_ping_and_simple_price_use_numbers_and_unix_seconds(fetch: Fetch) -> None:
    assert (await fetch("/coingecko/api/v3/ping")).json() == {"gecko_says": "(V3) To the Moon!"}
    answer = await fetch(
        "/coingecko/api/v3/simple/price",
        params={
            "ids": "bitcoin,ethereum,binancecoin,nosuchcoin",
            "vs_currencies": "usd",
            "include_market_cap": "true",
            "include_24hr_vol": "true",
            "include_24hr_change": "true",
            "include_last_updated_at": "true",
        },
    )
    body = answer.json()
    assert set(body) == {"bitcoin", "ethereum", "binancecoin"}
    btc = body["bitcoin"]
    assert set(btc) == {"usd", "usd_market_cap", "usd_24h_vol", "usd_24h_change", "last_updated_at"}
    assert isinstance(btc["usd"], float) and near(btc["usd"], BTC)
    assert near(body["ethereum"]["usd"], ETH) and near(body["binancecoin"]["usd"], BNB)
    assert isinstance(btc["last_updated_at"], int)
    assert 0 <= time.time() - btc["last_updated_at"] < 120


async def test_coingecko_simple_price_without_flags_has_only_the_price(fetch: Fetch) -> None:
    body = (
        await fetch(
            "/coingecko/api/v3/simple/price", params={"ids": "bitcoin", "vs_currencies": "usd"}
        )
    ).json()
    assert list(body["bitcoin"]) == ["usd"]


async def test_coinmarketcap_quotes_have_status_block_and_iso_timestamps(fetch: Fetch) -> None:
    answer = await fetch(
        "/coinmarketcap/v1/cryptocurrency/quotes/latest",
        params={"symbol": "BTC,ETH,BNB", "convert": "USD"},
        headers=CMC_KEY,
    )
    body = answer.json()
    assert body["status"]["error_code"] == 0 and body["status"]["error_message"] is None
    assert iso_age(body["status"]["timestamp"]) < 5
    usd = body["data"]["BTC"]["quote"]["USD"]
    assert near(usd["price"], BTC) and isinstance(usd["market_cap"], float)
    assert body["data"]["BTC"]["id"] == 1
    assert 0 <= iso_age(usd["last_updated"]) < 120
    assert usd["last_updated"].endswith("Z") and "." in usd["last_updated"]


async def test_coinmarketcap_key_info_reports_usage_of_this_minute(fetch: Fetch) -> None:
    await fetch("/coinmarketcap/v1/key/info", headers=CMC_KEY)
    body = (await fetch("/coinmarketcap/v1/key/info", headers=CMC_KEY)).json()
    assert body["status"]["credit_count"] == 0
    assert body["data"]["usage"]["current_minute"]["requests_made"] in (1, 2)
    assert body["data"]["plan"]["rate_limit_minute"] == 30


async def test_coinmarketcap_unknown_symbol_is_400_with_status_error(fetch: Fetch) -> None:
    answer = await fetch(
        "/coinmarketcap/v1/cryptocurrency/quotes/latest", params={"symbol": "NOPE"}, headers=CMC_KEY
    )
    assert answer.status == 400 and answer.json()["status"]["error_code"] == 400


async def test_cryptocompare_sends_its_cache_and_server_headers(fetch: Fetch) -> None:
    answer = await fetch("/cryptocompare/data/price", params={"fsym": "ETH", "tsyms": "USD,BTC"})
    assert answer.headers["X-CryptoCompare-Cache-HIT"] == "false"
    assert answer.headers["X-CryptoCompare-Server-Id"].startswith("cc-api-min")
    body = answer.json()
    assert near(body["USD"], ETH) and 0.04 < body["BTC"] < 0.06


async def test_cryptocompare_pricemultifull_lastupdate_is_unix_seconds(fetch: Fetch) -> None:
    body = (
        await fetch(
            "/cryptocompare/data/pricemultifull", params={"fsyms": "BTC,ETH", "tsyms": "USD"}
        )
    ).json()
    raw = body["RAW"]["BTC"]["USD"]
    assert near(raw["PRICE"], BTC) and isinstance(raw["LASTUPDATE"], int)
    assert 0 <= time.time() - raw["LASTUPDATE"] < 120
    assert "DISPLAY" in body


async def test_cryptocompare_unknown_pair_is_http_200_with_error_body(fetch: Fetch) -> None:
    answer = await fetch("/cryptocompare/data/price", params={"fsym": "XYZ", "tsyms": "USD"})
    assert answer.status == 200
    body = answer.json()
    assert body["Response"] == "Error" and "does not exist for this coin pair" in body["Message"]


async def test_cryptocompare_rate_limit_stats_count_calls(fetch: Fetch) -> None:
    await fetch("/cryptocompare/data/price", params={"fsym": "BTC", "tsyms": "USD"})
    body = (await fetch("/cryptocompare/stats/rate/limit")).json()
    assert body["Response"] == "Success"
    assert body["Data"]["calls_made"]["total_calls"] == 2
    assert body["Data"]["calls_left"]["month"] == 50_000 - 2


async def test_binance_ticker_uses_string_numbers_and_ms_times(fetch: Fetch) -> None:
    answer = await fetch(
        "/binance/api/v3/ticker/24hr", params={"symbols": '["BTCUSDT","ETHUSDT","BNBUSDT"]'}
    )
    rows = answer.json()
    assert [r["symbol"] for r in rows] == ["BTCUSDT", "ETHUSDT", "BNBUSDT"]
    btc = rows[0]
    assert isinstance(btc["lastPrice"], str) and near(float(btc["lastPrice"]), BTC)
    assert isinstance(btc["closeTime"], int) and abs(time.time() * 1000 - btc["closeTime"]) < 5000
    assert btc["closeTime"] - btc["openTime"] == 86_400_000


async def test_binance_single_symbol_ticker_is_an_object(fetch: Fetch) -> None:
    body = (await fetch("/binance/api/v3/ticker/price", params={"symbol": "ETHUSDT"})).json()
    assert body["symbol"] == "ETHUSDT" and near(float(body["price"]), ETH)


async def test_binance_unknown_symbol_is_400_code_1121(fetch: Fetch) -> None:
    answer = await fetch("/binance/api/v3/ticker/price", params={"symbol": "NOPEUSDT"})
    assert answer.status == 400 and answer.json() == {"code": -1121, "msg": "Invalid symbol."}


async def test_binance_used_weight_header_counts_request_weight(fetch: Fetch) -> None:
    first = await fetch("/binance/api/v3/ping")
    second = await fetch("/binance/api/v3/ticker/24hr", params={"symbols": '["BTCUSDT"]'})
    error = await fetch("/binance/api/v3/nope")
    used = [int(a.headers["X-MBX-USED-WEIGHT-1M"]) for a in (first, second, error)]
    assert first.json() == {}
    # Weight 1, then 2, then 1; a minute boundary between requests restarts the count.
    assert used == [1, 3, 4] or used[-1] < 4
    assert error.status == 404


async def test_binance_server_time_is_ms_integer(fetch: Fetch) -> None:
    body = (await fetch("/binance/api/v3/time")).json()
    assert (
        isinstance(body["serverTime"], int) and abs(body["serverTime"] - time.time() * 1000) < 5000
    )


async def test_etherscan_price_timestamps_are_unix_seconds_as_strings(fetch: Fetch) -> None:
    answer = await fetch(
        "/etherscan/v2/api",
        params={"chainid": "1", "module": "stats", "action": "ethprice", "apikey": "K"},
    )
    body = answer.json()
    assert body["status"] == "1" and body["message"] == "OK"
    result = body["result"]
    assert isinstance(result["ethusd_timestamp"], str)
    assert 0 <= time.time() - int(result["ethusd_timestamp"]) < 120
    assert near(float(result["ethusd"]), ETH)
    assert near(float(result["ethbtc"]), ETH / BTC, pct=0.5)


async def test_etherscan_gas_oracle_has_string_fields_and_no_timestamp(fetch: Fetch) -> None:
    body = (
        await fetch(
            "/etherscan/v2/api",
            params={"chainid": "1", "module": "gastracker", "action": "gasoracle", "apikey": "K"},
        )
    ).json()
    result = body["result"]
    for field in ("LastBlock", "SafeGasPrice", "ProposeGasPrice", "FastGasPrice", "suggestBaseFee"):
        assert isinstance(result[field], str)
    assert len(result["gasUsedRatio"].split(",")) == 5


async def test_bscscan_is_etherscan_v2_with_chainid_56_and_bnb_price(fetch: Fetch) -> None:
    body = (
        await fetch(
            "/bscscan/v2/api",
            params={"chainid": "56", "module": "stats", "action": "bnbprice", "apikey": "K"},
        )
    ).json()
    assert body["status"] == "1" and near(float(body["result"]["ethusd"]), BNB)
    supply = (
        await fetch(
            "/bscscan/v2/api",
            params={"chainid": "56", "module": "stats", "action": "bnbsupply", "apikey": "K"},
        )
    ).json()
    assert supply["result"].isdigit() and len(supply["result"]) > 20


async def test_etherscan_free_key_on_bsc_chain_is_not_supported(fetch: Fetch) -> None:
    body = (
        await fetch(
            "/bscscan/v2/api",
            params={"chainid": "56", "module": "stats", "action": "bnbprice", "apikey": "free-1"},
        )
    ).json()
    assert body["status"] == "0" and body["result"].startswith("Free API access is not supported")


@pytest.mark.parametrize(
    ("params", "result"),
    [
        ({"module": "stats", "action": "ethprice"}, "Missing or unsupported chainid"),
        (
            {"chainid": "1", "module": "nope", "action": "x"},
            "Error! Missing Or invalid Module name",
        ),
        (
            {"chainid": "1", "module": "stats", "action": "x"},
            "Error! Missing Or invalid Action name",
        ),
    ],
)
async def test_etherscan_bad_request_is_http_200_notok(
    fetch: Fetch, params: dict[str, str], result: str
) -> None:
    answer = await fetch("/etherscan/v2/api", params=params | {"apikey": "K"})
    assert answer.status == 200
    body = answer.json()
    assert body["status"] == "0" and body["message"] == "NOTOK"
    assert body["result"].startswith(result)


async def test_etherscan_v1_path_answers_deprecation_notice(fetch: Fetch) -> None:
    body = (await fetch("/etherscan/api", params={"module": "stats", "action": "ethprice"})).json()
    assert body["status"] == "0" and "deprecated V1 endpoint" in body["result"]


async def test_tronscan_latest_block_timestamp_is_ms(fetch: Fetch) -> None:
    body = (await fetch("/tronscan/api/block", params={"sort": "-number", "limit": "3"})).json()
    blocks = body["data"]
    assert len(blocks) == 3 and blocks[0]["number"] > blocks[1]["number"]
    assert isinstance(blocks[0]["timestamp"], int)
    assert 0 <= time.time() * 1000 - blocks[0]["timestamp"] < 10_000
    status = (await fetch("/tronscan/api/system/status")).json()
    assert status["database"]["block"] == blocks[0]["number"]


async def test_newsapi_articles_have_iso_published_at(fetch: Fetch) -> None:
    body = (
        await fetch(
            "/newsapi/v2/everything", params={"q": "bitcoin", "pageSize": "5"}, headers=NEWS_KEY
        )
    ).json()
    assert body["status"] == "ok" and isinstance(body["totalResults"], int)
    assert len(body["articles"]) == 5
    article = body["articles"][0]
    assert set(article) >= {"source", "author", "title", "url", "publishedAt", "content"}
    assert 0 <= iso_age(article["publishedAt"]) < 600


async def test_newsapi_everything_without_scope_is_parameters_missing(fetch: Fetch) -> None:
    answer = await fetch("/newsapi/v2/everything", headers=NEWS_KEY)
    assert answer.status == 400 and answer.json()["code"] == "parametersMissing"


async def test_newsapi_accepts_key_as_query_parameter(fetch: Fetch) -> None:
    answer = await fetch("/newsapi/v2/top-headlines/sources", params={"apiKey": "k"})
    assert answer.status == 200 and answer.json()["sources"][0]["language"] == "en"


async def test_cryptopanic_posts_have_iso_published_at(fetch: Fetch) -> None:
    body = (
        await fetch(
            "/cryptopanic/api/developer/v2/posts/", params={"auth_token": "t", "public": "true"}
        )
    ).json()
    post = body["results"][0]
    assert set(post) >= {"id", "title", "published_at", "source", "votes", "instruments"}
    assert 0 <= iso_age(post["published_at"]) < 600
    legacy = (await fetch("/cryptopanic/api/v1/posts/", params={"auth_token": "t"})).json()
    assert isinstance(legacy["count"], int) and "currencies" in legacy["results"][0]


async def test_fear_greed_values_and_timestamps_are_strings(fetch: Fetch) -> None:
    body = (await fetch("/alternative_me/fng/", params={"limit": "2"})).json()
    assert body["metadata"] == {"error": None}
    latest, previous = body["data"]
    assert isinstance(latest["value"], str) and 0 <= int(latest["value"]) <= 100
    assert (
        isinstance(latest["timestamp"], str) and 0 <= time.time() - int(latest["timestamp"]) < 120
    )
    assert "time_until_update" in latest and "time_until_update" not in previous
    assert int(latest["timestamp"]) - int(previous["timestamp"]) == 86_400


async def test_onchain_placeholders_serve_their_health_shapes(fetch: Fetch) -> None:
    graph = await fetch(
        "/thegraph/api/subgraphs/id/5zvR82QoaXYFyDEKLZ9t6v9adgnptxYpKpSbxtgVENFV",
        method="POST",
        headers={"Authorization": "Bearer k"},
        json_body={"query": "{ _meta { block { number } } }"},
    )
    assert isinstance(graph.json()["data"]["_meta"]["block"]["number"], int)
    chair = (await fetch("/blockchair/bitcoin/stats")).json()
    assert isinstance(chair["data"]["blocks"], int) and chair["context"]["code"] == 200
    glass = (
        await fetch(
            "/glassnode/v1/metrics/market/price_usd_close",
            params={"a": "BTC", "i": "24h", "api_key": "k"},
        )
    ).json()
    assert isinstance(glass[-1]["t"], int) and near(glass[-1]["v"], BTC)
    assert time.time() - glass[-1]["t"] < 86_400


@pytest.mark.parametrize(
    ("path", "status", "check"),
    [
        ("/coingecko/api/v3/nope", 404, lambda a: "Incorrect path" in a.json()["error"]),
        ("/coinmarketcap/v1/nope", 404, lambda a: a.json()["status"]["error_code"] == 404),
        ("/cryptocompare/data/nope", 404, lambda a: a.json()["Message"] == "Path does not exist"),
        ("/binance/api/v3/nope", 404, lambda a: "404 Not found" in a.text),
        ("/tronscan/api/nope", 404, lambda a: a.json()["error"] == "Not Found"),
        ("/newsapi/v2/nope", 404, lambda a: a.json()["status"] == "error"),
        ("/alternative_me/nope", 404, lambda a: "<title>404 Not Found</title>" in a.text),
        ("/nosuchprovider/x", 404, lambda a: "unknown provider" in a.json()["error"]),
    ],
)
async def test_unknown_path_gets_the_provider_404_style(
    fetch: Fetch, path: str, status: int, check: object
) -> None:
    answer = await fetch(path)
    assert answer.status == status
    assert check(answer)  # type: ignore[operator]


async def test_prices_agree_across_providers_within_a_fraction_of_a_percent(fetch: Fetch) -> None:
    gecko = (
        await fetch(
            "/coingecko/api/v3/simple/price", params={"ids": "bitcoin", "vs_currencies": "usd"}
        )
    ).json()["bitcoin"]["usd"]
    cmc = (
        await fetch(
            "/coinmarketcap/v1/cryptocurrency/quotes/latest",
            params={"symbol": "BTC"},
            headers=CMC_KEY,
        )
    ).json()["data"]["BTC"]["quote"]["USD"]["price"]
    compare = (
        await fetch("/cryptocompare/data/price", params={"fsym": "BTC", "tsyms": "USD"})
    ).json()["USD"]
    binance = float(
        (await fetch("/binance/api/v3/ticker/price", params={"symbol": "BTCUSDT"})).json()["price"]
    )
    prices = [gecko, cmc, compare, binance]
    assert max(prices) / min(prices) - 1 < 0.002, prices
    assert json.dumps(prices)  # all plain JSON numbers
