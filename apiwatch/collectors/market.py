"""Market data collectors: BTC, ETH and BNB in USD, with 24 h volume and change where the
provider offers them, from CoinGecko, CoinMarketCap, CryptoCompare and Binance.

Every provider's points use the same items (`BTC-USD`, `ETH-USD`, `BNB-USD`) so consensus
can compare them. `values` holds `volume_24h_usd`, `change_24h_pct` and `market_cap_usd`
as exact decimal strings, when offered. Each point carries the provider's own time for that
asset (CoinGecko `last_updated_at`, CMC `quote.USD.last_updated`, CryptoCompare
`LASTUPDATE`, Binance `closeTime`).

Binance quotes in USDT, not USD: its `BTCUSDT` counts as `BTC-USD`, marked
`"quote": "USDT"` in `values`. Tether trades within a fraction of a percent of the dollar;
if it ever slips by more than the divergence threshold, consensus flags Binance, which is
the truth about that price.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from apiwatch.collectors import parse
from apiwatch.collectors.base import CollectorError, DataPoint, collector

ASSETS = ("BTC", "ETH", "BNB")
_COINGECKO_IDS = {"bitcoin": "BTC", "ethereum": "ETH", "binancecoin": "BNB"}
_BINANCE_SYMBOLS = {f"{symbol}USDT": symbol for symbol in ASSETS}


def _point(
    *,
    provider: str,
    category: str,
    symbol: str,
    price: Decimal,
    extras: dict[str, Decimal | None],
    data_timestamp: Any,
    quote: str = "USD",
) -> DataPoint:
    values: dict[str, Any] = {k: parse.plain(v) for k, v in extras.items() if v is not None}
    values["quote"] = quote
    return DataPoint(
        provider=provider,
        category=category,
        item=f"{symbol}-USD",
        value=price,
        values=values,
        data_timestamp=data_timestamp,
    )


def _require_some(points: list[DataPoint], what: str) -> list[DataPoint]:
    if not points:
        raise CollectorError(f"no BTC, ETH or BNB price in the {what} payload")
    return points


def _maybe(reader: Callable[[Any, str], Decimal], value: Any, where: str) -> Decimal | None:
    """An optional field: absent or null is fine (CoinGecko's null 24 h change means its
    price is stale); present but broken is not."""
    return None if value is None else reader(value, where)


@collector
def coingecko_simple_price(payload: Any, *, provider: str, category: str) -> list[DataPoint]:
    """`/simple/price?ids=…&vs_currencies=usd&include_…=true`:
    `{"bitcoin": {"usd": 67187.33, "usd_24h_vol": …, "last_updated_at": 1711356300}}`.
    Ids we did not ask for are ignored; unknown ids are simply absent upstream."""
    body = parse.obj(payload, "$")
    points = []
    for coin_id, symbol in _COINGECKO_IDS.items():
        if coin_id not in body:
            continue
        where = f"$.{coin_id}"
        entry = parse.obj(body[coin_id], where)
        stamp = entry.get("last_updated_at")
        points.append(
            _point(
                provider=provider,
                category=category,
                symbol=symbol,
                price=parse.price(parse.at(entry, "usd", where=where), f"{where}.usd"),
                extras={
                    "volume_24h_usd": _maybe(
                        parse.amount, entry.get("usd_24h_vol"), f"{where}.usd_24h_vol"
                    ),
                    "change_24h_pct": _maybe(
                        parse.change_pct, entry.get("usd_24h_change"), f"{where}.usd_24h_change"
                    ),
                    "market_cap_usd": _maybe(
                        parse.amount, entry.get("usd_market_cap"), f"{where}.usd_market_cap"
                    ),
                },
                data_timestamp=None
                if stamp is None
                else parse.unix_time(stamp, f"{where}.last_updated_at"),
            )
        )
    return _require_some(points, "CoinGecko")


def _cmc_coins(data: Any) -> dict[str, tuple[str, dict[str, Any]]]:
    """Symbol → (path, coin) from `data`, keyed by symbol or id; v2 wraps each in a list."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for key, entry in parse.obj(data, "$.data").items():
        where = f"$.data.{key}"
        if isinstance(entry, list):  # v2 by symbol: every coin sharing the symbol, by rank
            if not entry:
                continue
            entry, where = entry[0], f"{where}[0]"
        coin = parse.obj(entry, where)
        symbol = coin.get("symbol")
        if symbol in ASSETS and symbol not in found:
            found[symbol] = (where, coin)
    return found


@collector
def coinmarketcap_quotes(payload: Any, *, provider: str, category: str) -> list[DataPoint]:
    """`/v1/cryptocurrency/quotes/latest?symbol=BTC,ETH,BNB&convert=USD`:
    `{"status": {"error_code": 0, …}, "data": {"BTC": {"quote": {"USD": {"price": …,
    "volume_24h": …, "percent_change_24h": …, "last_updated": "2019-08-16T14:16:35.000Z"}}}}}`.
    A non-zero `status.error_code` means no valid data, even on HTTP 200 (CMC's own advice)."""
    body = parse.obj(payload, "$")
    code = parse.optional(body, "status", "error_code")
    if code not in (None, 0, "0"):
        raise CollectorError("$.status.error_code is not 0: the payload is an error")
    points = []
    for symbol, (where, coin) in _cmc_coins(parse.at(body, "data")).items():
        usd_where = f"{where}.quote.USD"
        usd = parse.obj(parse.at(coin, "quote", "USD", where=where), usd_where)
        points.append(
            _point(
                provider=provider,
                category=category,
                symbol=symbol,
                price=parse.price(parse.at(usd, "price", where=usd_where), f"{usd_where}.price"),
                extras={
                    "volume_24h_usd": _maybe(
                        parse.amount, usd.get("volume_24h"), f"{usd_where}.volume_24h"
                    ),
                    "change_24h_pct": _maybe(
                        parse.change_pct,
                        usd.get("percent_change_24h"),
                        f"{usd_where}.percent_change_24h",
                    ),
                    "market_cap_usd": _maybe(
                        parse.amount, usd.get("market_cap"), f"{usd_where}.market_cap"
                    ),
                },
                data_timestamp=_cmc_time(usd, coin, usd_where, where),
            )
        )
    return _require_some(points, "CoinMarketCap")


def _cmc_time(usd: dict[str, Any], coin: dict[str, Any], usd_where: str, where: str) -> Any:
    if usd.get("last_updated") is not None:
        return parse.iso_time(usd["last_updated"], f"{usd_where}.last_updated")
    if coin.get("last_updated") is not None:
        return parse.iso_time(coin["last_updated"], f"{where}.last_updated")
    return None


@collector
def cryptocompare_pricemultifull(payload: Any, *, provider: str, category: str) -> list[DataPoint]:
    """`/data/pricemultifull?fsyms=BTC,ETH,BNB&tsyms=USD`:
    `{"RAW": {"BTC": {"USD": {"PRICE": …, "VOLUME24HOURTO": …, "CHANGEPCT24HOUR": …,
    "MKTCAP": …, "LASTUPDATE": 1714568400}}}, "DISPLAY": {…}}`. `VOLUME24HOURTO` is the
    volume in the quote currency (USD); `DISPLAY` holds formatted text and is ignored.
    Errors come as HTTP 200 with `"Response": "Error"` and no `RAW`."""
    body = parse.obj(payload, "$")
    if body.get("Response") == "Error":
        raise CollectorError("$.Response is Error: the payload is an error")
    raw = parse.obj(parse.at(body, "RAW"), "$.RAW")
    points = []
    for symbol in ASSETS:
        if symbol not in raw:
            continue
        where = f"$.RAW.{symbol}.USD"
        row = parse.obj(parse.at(raw, symbol, "USD", where="$.RAW"), where)
        stamp = row.get("LASTUPDATE")
        points.append(
            _point(
                provider=provider,
                category=category,
                symbol=symbol,
                price=parse.price(parse.at(row, "PRICE", where=where), f"{where}.PRICE"),
                extras={
                    "volume_24h_usd": _maybe(
                        parse.amount, row.get("VOLUME24HOURTO"), f"{where}.VOLUME24HOURTO"
                    ),
                    "change_24h_pct": _maybe(
                        parse.change_pct, row.get("CHANGEPCT24HOUR"), f"{where}.CHANGEPCT24HOUR"
                    ),
                    "market_cap_usd": _maybe(parse.amount, row.get("MKTCAP"), f"{where}.MKTCAP"),
                },
                data_timestamp=None
                if stamp is None
                else parse.unix_time(stamp, f"{where}.LASTUPDATE"),
            )
        )
    return _require_some(points, "CryptoCompare")


@collector
def binance_ticker_24hr(payload: Any, *, provider: str, category: str) -> list[DataPoint]:
    """`/api/v3/ticker/24hr?symbols=["BTCUSDT","ETHUSDT","BNBUSDT"]`: a list of tickers
    (one object with `symbol=`), every number a string: `{"symbol": "BTCUSDT",
    "lastPrice": "67012.34000000", "priceChangePercent": "1.840", "quoteVolume": "…",
    "closeTime": 1714568400123}`. `quoteVolume` is in USDT, counted as USD."""
    tickers = [payload] if isinstance(payload, dict) else parse.array(payload, "$")
    points = []
    seen: set[str] = set()
    for index, entry in enumerate(tickers):
        where = f"$[{index}]"
        ticker = parse.obj(entry, where)
        name = ticker.get("symbol")
        symbol = _BINANCE_SYMBOLS.get(name) if isinstance(name, str) else None
        if symbol is None or symbol in seen:
            continue
        seen.add(symbol)
        close = ticker.get("closeTime")
        points.append(
            _point(
                provider=provider,
                category=category,
                symbol=symbol,
                price=parse.price(parse.at(ticker, "lastPrice", where=where), f"{where}.lastPrice"),
                extras={
                    "volume_24h_usd": _maybe(
                        parse.amount, ticker.get("quoteVolume"), f"{where}.quoteVolume"
                    ),
                    "change_24h_pct": _maybe(
                        parse.change_pct,
                        ticker.get("priceChangePercent"),
                        f"{where}.priceChangePercent",
                    ),
                    # The ticker's own best bid and ask, to hold its last price against.
                    "bid": _maybe(parse.price, ticker.get("bidPrice"), f"{where}.bidPrice"),
                    "ask": _maybe(parse.price, ticker.get("askPrice"), f"{where}.askPrice"),
                },
                data_timestamp=None
                if close is None
                else parse.unix_time(close, f"{where}.closeTime", unit="ms"),
                quote="USDT",
            )
        )
    return _require_some(points, "Binance")
