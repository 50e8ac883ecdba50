"""The simulated exchanges held against the vendors' documented example bodies: the same
fields with the same JSON types (numbers as strings where the vendor sends strings, Bybit's
`time` as an integer of milliseconds, OKX's `code` and `ts` as strings), the documented error
bodies, and faithful books whose integrity faults appear only under their scenarios."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import pytest

from apiwatch.simulator import Scenario, Simulator

from .support import Fetch

# The vendors' documented examples, shortened to the fields that matter.
BYBIT_TIME = {
    "retCode": 0,
    "retMsg": "OK",
    "result": {"timeSecond": "1688639403", "timeNano": "1688639403423213947"},
    "retExtInfo": {},
    "time": 1688639403423,
}
OKX_TIME = {"code": "0", "msg": "", "data": [{"ts": "1597026383085"}]}
BYBIT_SPOT_TICKER_FIELDS = {
    "symbol", "bid1Price", "bid1Size", "ask1Price", "ask1Size", "lastPrice", "prevPrice24h",
    "price24hPcnt", "highPrice24h", "lowPrice24h", "turnover24h", "volume24h", "usdIndexPrice",
}  # fmt: skip
OKX_TICKER_FIELDS = {
    "instType", "instId", "last", "lastSz", "askPx", "askSz", "bidPx", "bidSz", "open24h",
    "high24h", "low24h", "volCcy24h", "vol24h", "sodUtc0", "sodUtc8", "ts",
}  # fmt: skip


def same_shape(actual: Any, example: Any, where: str = "$") -> None:
    """Every field of the example is there with the example's JSON type, recursively."""
    if isinstance(example, dict):
        assert isinstance(actual, dict), where
        assert set(actual) == set(example), (where, set(actual) ^ set(example))
        for key, value in example.items():
            same_shape(actual[key], value, f"{where}.{key}")
    elif isinstance(example, list):
        assert isinstance(actual, list) and actual, where
        same_shape(actual[0], example[0], f"{where}[0]")
    else:
        assert type(actual) is type(example), (where, type(actual), type(example))


async def test_bybit_time_has_the_documented_envelope_and_types(fetch: Fetch) -> None:
    body = (await fetch("/bybit/v5/market/time")).json()
    same_shape(body, BYBIT_TIME)
    assert abs(body["time"] / 1000 - time.time()) < 60
    assert body["result"]["timeSecond"] == str(body["time"] // 1000)


async def test_okx_time_has_the_documented_envelope_and_types(fetch: Fetch) -> None:
    body = (await fetch("/okx/api/v5/public/time")).json()
    same_shape(body, OKX_TIME)
    assert abs(int(body["data"][0]["ts"]) / 1000 - time.time()) < 60


async def test_bybit_spot_tickers_have_the_documented_fields_all_strings(fetch: Fetch) -> None:
    answer = await fetch("/bybit/v5/market/tickers", params={"category": "spot"})
    body = answer.json()
    assert body["retCode"] == 0 and body["result"]["category"] == "spot"
    for item in body["result"]["list"]:
        assert set(item) == BYBIT_SPOT_TICKER_FIELDS
        assert all(isinstance(v, str) for v in item.values())
    assert {"X-Bapi-Limit", "X-Bapi-Limit-Status", "X-Bapi-Limit-Reset-Timestamp"} <= set(
        answer.headers
    )


async def test_okx_ticker_has_the_documented_fields_all_strings(fetch: Fetch) -> None:
    body = (await fetch("/okx/api/v5/market/ticker", params={"instId": "BTC-USDT"})).json()
    [row] = body["data"]
    assert set(row) == OKX_TICKER_FIELDS and all(isinstance(v, str) for v in row.values())
    assert Decimal(row["bidPx"]) <= Decimal(row["last"]) <= Decimal(row["askPx"])


async def test_okx_unknown_instrument_is_51001_inside_a_200(fetch: Fetch) -> None:
    answer = await fetch("/okx/api/v5/market/ticker", params={"instId": "NOPE-USDT"})
    assert answer.status == 200
    assert answer.json()["code"] == "51001" and answer.json()["data"] == []


@pytest.mark.parametrize(
    ("path", "params", "bids", "asks", "extra"),
    [
        (
            "/bybit/v5/market/orderbook",
            {"category": "spot", "symbol": "BTCUSDT", "limit": "50"},
            ("result", "b"),
            ("result", "a"),
            2,
        ),
        (
            "/okx/api/v5/market/books",
            {"instId": "BTC-USDT", "sz": "50"},
            ("data", 0, "bids"),
            ("data", 0, "asks"),
            4,
        ),
        ("/binance/api/v3/depth", {"symbol": "BTCUSDT", "limit": "50"}, ("bids",), ("asks",), 2),
    ],
)
async def test_healthy_books_are_ordered_uncrossed_string_levels(
    fetch: Fetch, path: str, params: dict[str, str], bids: tuple, asks: tuple, extra: int
) -> None:
    body = (await fetch(path, params=params)).json()

    def side(keys: tuple) -> list[list[str]]:
        node = body
        for key in keys:
            node = node[key]
        return node

    bid_rows, ask_rows = side(bids), side(asks)
    assert len(bid_rows) == len(ask_rows) == 50
    assert all(len(r) == extra and all(isinstance(v, str) for v in r) for r in bid_rows + ask_rows)
    bid_prices = [Decimal(r[0]) for r in bid_rows]
    ask_prices = [Decimal(r[0]) for r in ask_rows]
    assert bid_prices == sorted(bid_prices, reverse=True) and len(set(bid_prices)) == 50
    assert ask_prices == sorted(ask_prices) and len(set(ask_prices)) == 50
    assert bid_prices[0] < ask_prices[0]


async def test_book_scenarios_break_exactly_their_own_thing(sim: Simulator, fetch: Fetch) -> None:
    params = {"category": "spot", "symbol": "BTCUSDT", "limit": "5"}
    path = "/bybit/v5/market/orderbook"
    sim.set_scenario("bybit", Scenario("crossed_book"))
    crossed = (await fetch(path, params=params)).json()["result"]
    assert Decimal(crossed["b"][0][0]) > Decimal(crossed["a"][0][0])
    sim.set_scenario("bybit", Scenario("frozen_book"))
    first = (await fetch(path, params=params)).json()["result"]
    await asyncio.sleep(0.1)
    second = (await fetch(path, params=params)).json()["result"]
    assert first["u"] == second["u"] and second["ts"] > first["ts"]
    sim.set_scenario("bybit", Scenario("wide_spread", {"bps": 300}))
    wide = (await fetch(path, params=params)).json()["result"]
    bid, ask = Decimal(wide["b"][0][0]), Decimal(wide["a"][0][0])
    assert (ask - bid) / ((ask + bid) / 2) * 10_000 == pytest.approx(300, abs=1)
    sim.set_scenario("bybit", Scenario("healthy"))
    healthy = (await fetch(path, params=params)).json()["result"]
    assert healthy["u"] > second["u"]


def _prices(rows: list[list[str]]) -> list[Decimal]:
    return [Decimal(row[0]) for row in rows]


async def test_each_static_book_fault_breaks_only_its_own_rule(
    sim: Simulator, fetch: Fetch
) -> None:
    params = {"category": "spot", "symbol": "BTCUSDT", "limit": "10"}

    async def book(scenario: str) -> tuple[list[list[str]], list[list[str]]]:
        sim.set_scenario("bybit", Scenario(scenario))
        result = (await fetch("/bybit/v5/market/orderbook", params=params)).json()["result"]
        return result["b"], result["a"]

    def ordered(prices: list[Decimal], descending: bool) -> bool:
        return prices == sorted(set(prices), reverse=descending)

    bids, asks = await book("locked_book")
    assert bids[0][0] == asks[0][0] and ordered(_prices(bids), True)
    bids, asks = await book("one_sided_book")
    assert asks == [] and len(bids) == 10
    bids, asks = await book("non_positive_book")
    sizes = [Decimal(size) for _, size in bids + asks]
    assert [s for s in sizes if s <= 0] == [Decimal(0), Decimal(asks[2][1])]
    assert Decimal(bids[1][1]) == 0 and Decimal(asks[2][1]) < 0
    assert ordered(_prices(bids), True) and ordered(_prices(asks), False)
    bids, asks = await book("duplicate_level_book")
    assert bids[1] == bids[2] and len(bids) == 10 and len(set(_prices(bids))) == 9
    bids, asks = await book("unordered_book")
    prices = _prices(asks)
    assert prices[3] < prices[2] and ordered(prices[:3], False) and ordered(_prices(bids), True)
    bids, asks = await book("unreadable_book")
    assert bids[0][1] == "NaN" and Decimal(bids[1][1]) > 0
    for side in (bids, asks):
        assert all(Decimal(price) > 0 for price, _ in side)
    assert Decimal(bids[0][0]) < Decimal(asks[0][0])


async def test_a_rewound_book_serves_ever_lower_update_ids(sim: Simulator, fetch: Fetch) -> None:
    params = {"instId": "BTC-USDT", "sz": "5"}
    healthy = (await fetch("/okx/api/v5/market/books", params=params)).json()["data"][0]
    sim.set_scenario("okx", Scenario("rewound_book"))
    ids = []
    for _ in range(3):
        row = (await fetch("/okx/api/v5/market/books", params=params)).json()["data"][0]
        ids.append(row["seqId"])
    assert healthy["seqId"] > ids[0] > ids[1] > ids[2]


@pytest.mark.parametrize(
    ("path", "params", "row", "last", "ask"),
    [
        (
            "/bybit/v5/market/tickers",
            {"category": "spot"},
            ("result", "list", 0),
            "lastPrice",
            "ask1Price",
        ),
        ("/okx/api/v5/market/ticker", {"instId": "BTC-USDT"}, ("data", 0), "last", "askPx"),
        ("/binance/api/v3/ticker/24hr", {"symbol": "BTCUSDT"}, (), "lastPrice", "askPrice"),
    ],
)
async def test_ticker_outside_puts_the_last_price_beyond_its_own_best_ask(
    sim: Simulator, fetch: Fetch, path: str, params: dict, row: tuple, last: str, ask: str
) -> None:
    provider = path.split("/")[1]
    sim.set_scenario(provider, Scenario("ticker_outside", {"bps": 100}))
    node = (await fetch(path, params=params)).json()
    for key in row:
        node = node[key]
    beyond = (Decimal(node[last]) / Decimal(node[ask]) - 1) * 10_000
    assert 90 < beyond < 100  # 100 bps above the true price, the ask 0.1 to 0.5 bps above it


async def test_error_code_puts_the_venues_code_inside_a_200(sim: Simulator, fetch: Fetch) -> None:
    sim.set_scenario("bybit", Scenario("error_code", {"code": 10018}))
    answer = await fetch("/bybit/v5/market/time")
    assert answer.status == 200
    assert (answer.json()["retCode"], answer.json()["retMsg"]) == (
        10018,
        "Exceeded the IP Rate Limit.",
    )
    sim.set_scenario("bybit", Scenario("error_code"))
    assert (await fetch("/bybit/v5/market/time")).json()["retCode"] == 10016
    sim.set_scenario("okx", Scenario("error_code", {"code": 50013}))
    answer = await fetch("/okx/api/v5/public/time")
    assert answer.status == 200
    assert answer.json() == {
        "code": "50013",
        "data": [],
        "msg": "Systems are busy. Please try again later.",
    }


async def test_okx_rate_limit_bodies_with_429_and_with_200(sim: Simulator, fetch: Fetch) -> None:
    sim.set_scenario("okx", Scenario("rate_limited"))
    answer = await fetch("/okx/api/v5/market/books", params={"instId": "BTC-USDT"})
    assert (answer.status, answer.json()) == (429, {"msg": "Too Many Requests", "code": "50011"})
    sim.set_scenario("okx", Scenario("rate_limited", {"http_status": 200}))
    answer = await fetch("/okx/api/v5/market/books", params={"instId": "BTC-USDT"})
    assert answer.status == 200 and answer.json()["code"] == "50011"
    sim.set_scenario("okx", Scenario("down", {"status": 429}))
    answer = await fetch("/okx/api/v5/market/books", params={"instId": "BTC-USDT"})
    assert answer.status == 429 and answer.json()["code"] == "50013"


async def test_bybit_ip_ban_is_a_403_page_saying_access_too_frequent(
    sim: Simulator, fetch: Fetch
) -> None:
    sim.set_scenario("bybit", Scenario("rate_limited", {"http_status": 403}))
    answer = await fetch("/bybit/v5/market/time")
    assert answer.status == 403 and "access too frequent" in answer.text
