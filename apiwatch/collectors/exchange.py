"""Exchange collectors: order books and tickers from Binance, Bybit and OKX.

A book becomes one point, item `book:BTC-USDT` (the same name on every venue, so the
venues' mids can be compared), whose `values` hold the normalised book: `bids` and `asks`
as `[[price, size], …]` exact decimal strings in the order the venue sent them, the
venue's update id (`u`, `lastUpdateId`, `seqId`) and the symbol. Nothing about the book's
integrity is decided here: a crossed book, a zero size or a repeated level is normalised
faithfully and judged by the checks in `analysis/books.py`, which name what is wrong. What
is refused here is what cannot be read at all (a level that is not two numbers, an error
envelope, a book of more levels than any venue sends).

Tickers become the usual `BTC-USD` market points (USDT counted as USD, as for Binance's
24 h ticker) with the ticker's own best `bid` and `ask` in `values`, so the ticker's last
price can be held against them.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from apiwatch.collectors import parse
from apiwatch.collectors.base import CollectorError, DataPoint, collector

# Venues send at most 5000 levels a side (Binance's deepest); more is not a book.
MAX_LEVELS = 5000
MAX_UPDATE_ID = 2**63 - 1
_SYMBOLS = {"BTCUSDT": "BTC", "ETHUSDT": "ETH", "BNBUSDT": "BNB"}
_OKX_SYMBOLS = {"BTC-USDT": "BTC", "ETH-USDT": "ETH", "BNB-USDT": "BNB"}


def book_item(symbol: str) -> str:
    return f"book:{symbol}"


def _levels(value: Any, where: str) -> list[list[str]]:
    rows = parse.array(value, where)
    if len(rows) > MAX_LEVELS:
        raise CollectorError(f"{where} has {len(rows)} levels, more than {MAX_LEVELS}")
    out = []
    for index, row in enumerate(rows):
        at = f"{where}[{index}]"
        # OKX adds two more fields (a deprecated 0 and the order count) after price, size.
        level = parse.array(row, at)
        if len(level) < 2:
            raise CollectorError(f"{at} should be [price, size, …], got {len(level)} fields")
        # Zero and negative numbers are read (the checks name them); absurd ones are not.
        price = parse.bounded(
            level[0], f"{at}[0]", low=-parse.MAX_PRICE_USD, high=parse.MAX_PRICE_USD
        )
        size = parse.bounded(
            level[1], f"{at}[1]", low=-parse.MAX_AMOUNT_USD, high=parse.MAX_AMOUNT_USD
        )
        out.append([parse.plain(price), parse.plain(size)])
    return out


def _update_id(value: Any, where: str) -> int | None:
    return None if value is None else parse.integer(value, where, high=MAX_UPDATE_ID)


def _book(
    *,
    provider: str,
    category: str,
    symbol: str,
    bids: list[list[str]],
    asks: list[list[str]],
    update_id: int | None,
    stamp: datetime | None,
) -> DataPoint:
    # The value is the venue's mid from its first level each side, exact; a book missing a
    # side has none, and says so in `text`.
    mid = (Decimal(bids[0][0]) + Decimal(asks[0][0])) / 2 if bids and asks else None
    return DataPoint(
        provider=provider,
        category=category,
        item=book_item(symbol),
        value=mid,
        text=None if mid is not None else "a side of the book is empty",
        values={
            "kind": "book",
            "symbol": symbol,
            "bids": bids,
            "asks": asks,
            "update_id": update_id,
        },
        data_timestamp=stamp,
    )


def _read_book(
    node: dict[str, Any],
    where: str,
    keys: tuple[str, str, str, str | None],
    symbol: str,
    provider: str,
    category: str,
) -> list[DataPoint]:
    """A venue's book from `node`: its (bids, asks, update id, time in ms) fields."""
    bids_key, asks_key, id_key, time_key = keys
    stamp = None if time_key is None else node.get(time_key)
    return [
        _book(
            provider=provider,
            category=category,
            symbol=symbol,
            bids=_levels(parse.at(node, bids_key, where=where), f"{where}.{bids_key}"),
            asks=_levels(parse.at(node, asks_key, where=where), f"{where}.{asks_key}"),
            update_id=_update_id(node.get(id_key), f"{where}.{id_key}"),
            stamp=None
            if stamp is None
            else parse.unix_time(stamp, f"{where}.{time_key}", unit="ms"),
        )
    ]


def _ticker(
    *,
    provider: str,
    category: str,
    asset: str,
    last: Decimal,
    bid: Decimal | None,
    ask: Decimal | None,
    extras: dict[str, Decimal | None],
    stamp: datetime | None,
) -> DataPoint:
    values: dict[str, Any] = {k: parse.plain(v) for k, v in extras.items() if v is not None}
    values.update(quote="USDT", kind="ticker")
    if bid is not None:
        values["bid"] = parse.plain(bid)
    if ask is not None:
        values["ask"] = parse.plain(ask)
    return DataPoint(
        provider=provider,
        category=category,
        item=f"{asset}-USD",
        value=last,
        values=values,
        data_timestamp=stamp,
    )


def _optional(reader: Any, value: Any, where: str) -> Decimal | None:
    return None if value in (None, "") else reader(value, where)


def _bybit_result(payload: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    body = parse.obj(payload, "$")
    code = body.get("retCode")
    if code != 0:
        raise CollectorError("$.retCode is not 0: the payload is an error")
    return body, parse.obj(parse.at(body, "result"), "$.result")


@collector
def bybit_orderbook(payload: Any, *, provider: str, category: str) -> list[DataPoint]:
    """`/v5/market/orderbook?category=spot&symbol=BTCUSDT&limit=50`: `{"retCode": 0,
    "result": {"s": "BTCUSDT", "b": [["65485.47", "47.081829"]], "a": [[…]], "ts":
    1716863719031, "u": 230704, "seq": 1432604333}, "time": …}`; bids best first."""
    _, result = _bybit_result(payload)
    name = parse.text(parse.at(result, "s", where="$.result"), "$.result.s", max_chars=32)
    asset = _SYMBOLS.get(name)
    if asset is None:
        raise CollectorError("$.result.s is not a symbol we asked for")
    return _read_book(
        result, "$.result", ("b", "a", "u", "ts"), f"{asset}-USDT", provider, category
    )


@collector
def bybit_tickers(payload: Any, *, provider: str, category: str) -> list[DataPoint]:
    """`/v5/market/tickers?category=spot`: `result.list[]` of `{"symbol": "BTCUSDT",
    "bid1Price", "ask1Price", "lastPrice", "price24hPcnt" (a fraction), "turnover24h"}`,
    all strings; the envelope's `time` (ms) is the only timestamp."""
    body, result = _bybit_result(payload)
    stamp = body.get("time")
    moment = None if stamp is None else parse.unix_time(stamp, "$.time", unit="ms")
    points = []
    seen: set[str] = set()
    for index, entry in enumerate(parse.array(parse.at(result, "list"), "$.result.list")):
        where = f"$.result.list[{index}]"
        row = parse.obj(entry, where)
        name = row.get("symbol")
        asset = _SYMBOLS.get(name) if isinstance(name, str) else None
        if asset is None or asset in seen:
            continue
        seen.add(asset)
        change = _optional(parse.decimal, row.get("price24hPcnt"), f"{where}.price24hPcnt")
        points.append(
            _ticker(
                provider=provider,
                category=category,
                asset=asset,
                last=parse.price(parse.at(row, "lastPrice", where=where), f"{where}.lastPrice"),
                bid=_optional(parse.price, row.get("bid1Price"), f"{where}.bid1Price"),
                ask=_optional(parse.price, row.get("ask1Price"), f"{where}.ask1Price"),
                extras={
                    "volume_24h_usd": _optional(
                        parse.amount, row.get("turnover24h"), f"{where}.turnover24h"
                    ),
                    "change_24h_pct": None
                    if change is None
                    else parse.change_pct(change * 100, f"{where}.price24hPcnt"),
                },
                stamp=moment,
            )
        )
    if not points:
        raise CollectorError("no BTC, ETH or BNB ticker in the Bybit payload")
    return points


def _okx_first(payload: Any) -> dict[str, Any]:
    body = parse.obj(payload, "$")
    if body.get("code") != "0":
        raise CollectorError('$.code is not "0": the payload is an error')
    return parse.obj(parse.at(body, "data", 0), "$.data[0]")


@collector
def okx_books(payload: Any, *, provider: str, category: str) -> list[DataPoint]:
    """`/api/v5/market/books?instId=BTC-USDT&sz=50`: `{"code": "0", "data": [{"asks":
    [["41006.8", "0.60038921", "0", "1"]], "bids": [[…]], "ts": "1629966436396"}]}`;
    the instrument is not repeated in the body, so it is the one the catalogue asks for.
    A `seqId`, when present, is the update id."""
    book = _okx_first(payload)
    return _read_book(
        book, "$.data[0]", ("bids", "asks", "seqId", "ts"), "BTC-USDT", provider, category
    )


@collector
def okx_ticker(payload: Any, *, provider: str, category: str) -> list[DataPoint]:
    """`/api/v5/market/ticker?instId=BTC-USDT`: `data[0]` with `instId, last, bidPx, askPx,
    volCcy24h` (quote volume for spot) and `ts` (ms, a string); every number a string."""
    row = _okx_first(payload)
    where = "$.data[0]"
    name = row.get("instId")
    asset = _OKX_SYMBOLS.get(name) if isinstance(name, str) else None
    if asset is None:
        raise CollectorError(f"{where}.instId is not an instrument we asked for")
    stamp = row.get("ts")
    return [
        _ticker(
            provider=provider,
            category=category,
            asset=asset,
            last=parse.price(parse.at(row, "last", where=where), f"{where}.last"),
            bid=_optional(parse.price, row.get("bidPx"), f"{where}.bidPx"),
            ask=_optional(parse.price, row.get("askPx"), f"{where}.askPx"),
            extras={
                "volume_24h_usd": _optional(
                    parse.amount, row.get("volCcy24h"), f"{where}.volCcy24h"
                )
            },
            stamp=None if stamp is None else parse.unix_time(stamp, f"{where}.ts", unit="ms"),
        )
    ]


@collector
def binance_depth(payload: Any, *, provider: str, category: str) -> list[DataPoint]:
    """`/api/v3/depth?symbol=BTCUSDT&limit=50`: `{"lastUpdateId": 1027024, "bids":
    [["4.00000000", "431.00000000"]], "asks": [[…]]}`. No timestamp: the book's age is
    unknown, and a frozen `lastUpdateId` is what gives a stuck book away."""
    body = parse.obj(payload, "$")
    parse.at(body, "lastUpdateId")  # required here, unlike Bybit's `u` and OKX's `seqId`
    return _read_book(
        body, "$", ("bids", "asks", "lastUpdateId", None), "BTC-USDT", provider, category
    )
