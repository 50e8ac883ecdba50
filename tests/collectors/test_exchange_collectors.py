"""Exchange collectors and signals against the vendors' documented bodies (shapes, types,
units), exact decimal normalisation, hostile bodies, and the classification of each
exchange's own rate-limit, ban, busy and invalid-key signals."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from apiwatch.catalogue.loader import load_catalogue
from apiwatch.collectors.base import CollectorError, DataPoint
from apiwatch.collectors.registry import get_collector
from apiwatch.domain import Outcome
from apiwatch.probe.classify import classify_response

CATALOGUE = load_catalogue()

BYBIT_BOOK = {
    "retCode": 0,
    "retMsg": "OK",
    "result": {
        "s": "BTCUSDT",
        "a": [["65557.7", "16.606555"], ["65558.01", "0.000001"]],
        "b": [["65485.47", "47.081829"], ["65485.46", "0.1"]],
        "ts": 1716863719031,
        "u": 230704,
        "seq": 1432604333,
        "cts": 1716863718905,
    },
    "retExtInfo": {},
    "time": 1716863719382,
}
OKX_BOOK = {
    "code": "0",
    "msg": "",
    "data": [
        {
            "asks": [["41006.8", "0.60038921", "0", "1"]],
            "bids": [["41006.3", "0.30178218", "0", "2"]],
            "ts": "1629966436396",
        }
    ],
}
BINANCE_DEPTH = {
    "lastUpdateId": 1027024,
    "bids": [["4.00000000", "431.00000000"]],
    "asks": [["4.00000200", "12.00000000"]],
}
OKX_TICKER = {
    "code": "0",
    "msg": "",
    "data": [
        {
            "instType": "SPOT",
            "instId": "BTC-USDT",
            "last": "9999.99",
            "lastSz": "0.1",
            "askPx": "9999.99",
            "askSz": "11",
            "bidPx": "8888.88",
            "bidSz": "5",
            "open24h": "9000",
            "high24h": "10000",
            "low24h": "8888.88",
            "volCcy24h": "2222",
            "vol24h": "2222",
            "sodUtc0": "0.1",
            "sodUtc8": "0.1",
            "ts": "1597026383085",
        }
    ],
}
BYBIT_TICKERS = {
    "retCode": 0,
    "retMsg": "OK",
    "result": {
        "category": "spot",
        "list": [
            {
                "symbol": "BTCUSDT",
                "bid1Price": "20517.96",
                "bid1Size": "2",
                "ask1Price": "20527.77",
                "ask1Size": "1.862172",
                "lastPrice": "20533.13",
                "prevPrice24h": "20393.48",
                "price24hPcnt": "0.0068",
                "highPrice24h": "21128.12",
                "lowPrice24h": "20318.89",
                "turnover24h": "243765620.65899866",
                "volume24h": "11801.27771",
                "usdIndexPrice": "20784.12009279",
            }
        ],
    },
    "retExtInfo": {},
    "time": 1673859087947,
}


def run(name: str, body: Any) -> list[DataPoint]:
    return get_collector(name)(body, provider="p", category="market_data")


def test_bybit_book_is_normalised_digit_for_digit_with_its_update_id_and_time() -> None:
    [point] = run("exchange.bybit_orderbook", BYBIT_BOOK)
    assert point.item == "book:BTC-USDT"
    assert point.values is not None
    assert point.values["bids"] == [["65485.47", "47.081829"], ["65485.46", "0.1"]]
    assert point.values["asks"] == [["65557.7", "16.606555"], ["65558.01", "0.000001"]]
    assert point.values["update_id"] == 230704
    assert point.data_timestamp == datetime.fromtimestamp(1716863719.031, UTC)
    # The mid of the first levels, exact: (65485.47 + 65557.7) / 2.
    assert point.value == Decimal("65521.585")


def test_okx_book_drops_the_two_extra_fields_and_reads_the_string_ms_time() -> None:
    [point] = run("exchange.okx_books", OKX_BOOK)
    assert point.values is not None
    assert point.values["asks"] == [["41006.8", "0.60038921"]]
    assert point.values["bids"] == [["41006.3", "0.30178218"]]
    assert point.values["update_id"] is None  # no seqId in this body: not invented
    assert point.data_timestamp == datetime.fromtimestamp(1629966436.396, UTC)
    with_seq = {**OKX_BOOK, "data": [{**OKX_BOOK["data"][0], "seqId": 3_400_000_001}]}
    assert run("exchange.okx_books", with_seq)[0].values["update_id"] == 3_400_000_001  # type: ignore[index]


def test_binance_depth_keeps_eight_places_and_has_no_time() -> None:
    [point] = run("exchange.binance_depth", BINANCE_DEPTH)
    assert point.values is not None
    assert point.values["bids"] == [["4.00000000", "431.00000000"]]
    assert point.values["update_id"] == 1027024
    assert point.data_timestamp is None
    assert point.value == Decimal("4.00000100")


def test_a_crossed_or_zero_sized_book_is_normalised_not_refused_so_the_checks_can_name_it() -> None:
    crossed = {**BINANCE_DEPTH, "bids": [["5", "1"]], "asks": [["4", "0"]]}
    [point] = run("exchange.binance_depth", crossed)
    assert point.values is not None and point.values["asks"] == [["4", "0"]]


def test_okx_and_bybit_tickers_give_last_with_their_own_bid_and_ask_exactly() -> None:
    [okx] = run("exchange.okx_ticker", OKX_TICKER)
    assert (okx.item, okx.value) == ("BTC-USD", Decimal("9999.99"))
    assert okx.values is not None
    assert (okx.values["bid"], okx.values["ask"], okx.values["quote"]) == (
        "8888.88",
        "9999.99",
        "USDT",
    )
    assert okx.data_timestamp == datetime.fromtimestamp(1597026383.085, UTC)
    [bybit] = run("exchange.bybit_tickers", BYBIT_TICKERS)
    assert bybit.value == Decimal("20533.13")
    assert bybit.values is not None
    # price24hPcnt is a fraction: 0.0068 is 0.68 %, exactly.
    assert bybit.values["change_24h_pct"] == "0.6800"
    assert bybit.values["volume_24h_usd"] == "243765620.65899866"
    assert bybit.data_timestamp == datetime.fromtimestamp(1673859087.947, UTC)


@pytest.mark.parametrize(
    ("collector", "body", "message"),
    [
        ("exchange.bybit_orderbook", {"retCode": 10001, "retMsg": "x", "result": {}}, "retCode"),
        ("exchange.bybit_orderbook", {**BYBIT_BOOK, "result": []}, "should be an object"),
        (
            "exchange.bybit_orderbook",
            {**BYBIT_BOOK, "result": {**BYBIT_BOOK["result"], "b": [["1e9999", "1"]]}},
            "b[0][0]",
        ),
        (
            "exchange.bybit_orderbook",
            {**BYBIT_BOOK, "result": {**BYBIT_BOOK["result"], "a": [["NaN", "1"]]}},
            "should be a number",
        ),
        (
            "exchange.bybit_orderbook",
            {**BYBIT_BOOK, "result": {**BYBIT_BOOK["result"], "a": [["1"]]}},
            "[price, size",
        ),
        (
            "exchange.bybit_orderbook",
            {**BYBIT_BOOK, "result": {**BYBIT_BOOK["result"], "s": "DOGEUSDT"}},
            "symbol we asked for",
        ),
        (
            "exchange.bybit_orderbook",
            {**BYBIT_BOOK, "result": {**BYBIT_BOOK["result"], "u": -3}},
            "$.result.u",
        ),
        ("exchange.okx_books", {"code": "50011", "msg": "x", "data": []}, '"0"'),
        ("exchange.okx_books", {"code": "0", "msg": "", "data": []}, "$.data[0] is missing"),
        (
            "exchange.okx_books",
            {"code": "0", "data": [{"asks": [["1", "2"]] * 5001, "bids": []}]},
            "more than 5000",
        ),
        ("exchange.binance_depth", {"bids": [], "asks": []}, "lastUpdateId"),
        ("exchange.binance_depth", {**BINANCE_DEPTH, "bids": "many"}, "should be a list"),
        ("exchange.okx_ticker", {**OKX_TICKER, "data": [{"instId": "BTC-USDT"}]}, "last"),
        ("exchange.bybit_tickers", {**BYBIT_TICKERS, "result": {"list": []}}, "no BTC"),
        ("exchange.okx_ticker", [1, 2, 3], "should be an object"),
    ],
)
def test_hostile_bodies_end_as_a_collector_error_naming_where(
    collector: str, body: Any, message: str
) -> None:
    with pytest.raises(CollectorError) as raised:
        run(collector, body)
    assert message in str(raised.value)


def classify(provider: str, status: int, body: bytes, endpoint: str = "health"):
    spec = CATALOGUE.providers[provider]
    return classify_response(
        provider=spec,
        endpoint=spec.all_endpoints()[endpoint],
        status=status,
        body=body,
        headers={},
        latency_ms=10.0,
    )


def test_bybit_retcode_10006_inside_a_200_is_rate_limited() -> None:
    verdict = classify("bybit", 200, b'{"retCode":10006,"retMsg":"Too many visits!"}')
    assert verdict.outcome is Outcome.RATE_LIMITED
    assert "Too many visits!" in verdict.reason


def test_bybit_403_access_too_frequent_is_an_ip_ban_of_ten_minutes_not_a_bad_key() -> None:
    page = b"<html><head><title>403 Forbidden</title></head><body>access too frequent</body>"
    verdict = classify("bybit", 403, page)
    assert verdict.outcome is Outcome.RATE_LIMITED
    assert verdict.reason.startswith("IP banned (HTTP 403)")
    assert verdict.retry_after_s == 600
    # Any other 403 is still a rejected request.
    assert classify("bybit", 403, b"<html>Forbidden</html>").outcome is Outcome.AUTH_ERROR


@pytest.mark.parametrize("code", [10003, 10004])
def test_bybit_invalid_key_codes_are_auth_errors(code: int) -> None:
    body = f'{{"retCode":{code},"retMsg":"API key is invalid."}}'.encode()
    assert classify("bybit", 200, body).outcome is Outcome.AUTH_ERROR


def test_bybit_other_business_codes_are_invalid_payloads_with_the_message() -> None:
    verdict = classify(
        "bybit", 200, b'{"retCode":10001,"retMsg":"Not supported symbols"}', "orderbook"
    )
    assert verdict.outcome is Outcome.INVALID_PAYLOAD
    assert "Not supported symbols" in verdict.reason


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (429, b'{"msg":"Too Many Requests","code":"50011"}'),
        (200, b'{"code":"50011","data":[],"msg":"Rate limit reached."}'),
    ],
)
def test_okx_50011_is_rate_limited_with_429_and_with_200(status: int, body: bytes) -> None:
    verdict = classify("okx", status, body, "books")
    assert verdict.outcome is Outcome.RATE_LIMITED


def test_okx_50013_with_429_is_the_provider_busy_not_our_quota() -> None:
    body = b'{"code":"50013","data":[],"msg":"Systems are busy. Please try again later."}'
    verdict = classify("okx", 429, body, "ticker")
    assert verdict.outcome is Outcome.SERVER_ERROR
    assert verdict.reason.startswith("provider busy (HTTP 429)")


def test_okx_error_code_with_200_fails_the_payload_check() -> None:
    body = b'{"code":"51001","data":[],"msg":"Instrument ID does not exist."}'
    assert classify("okx", 200, body, "ticker").outcome is Outcome.INVALID_PAYLOAD


def test_okx_success_is_ok() -> None:
    assert classify(
        "okx", 200, b'{"code":"0","msg":"","data":[{"ts":"1597026383085"}]}'
    ).outcome is (Outcome.OK)
