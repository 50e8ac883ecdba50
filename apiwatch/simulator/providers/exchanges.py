"""Bybit v5 and OKX v5 public market data: their envelopes, order books, tickers, error
codes and rate-limit signals.

Bybit wraps everything in `{retCode, retMsg, result, retExtInfo, time}` and says most
errors with HTTP 200 and a non-zero `retCode`; its IP ban is an HTTP 403 page saying
"access too frequent". Each answer carries `X-Bapi-Limit`, `X-Bapi-Limit-Status` and
`X-Bapi-Limit-Reset-Timestamp` for the endpoint that answered, counted per second here.

OKX wraps everything in `{code, msg, data}` with `code` a string and `data` a list; 50011
is its rate limit (with HTTP 429, or 200), 50013 its "busy". It sends no rate-limit headers.
"""

from __future__ import annotations

from typing import Any

from apiwatch.simulator.books import BookMaker, levels, ticker_last
from apiwatch.simulator.market import ASSETS
from apiwatch.simulator.providers.base import HTML, Ctx, Provider, Reply, status_page

BYBIT_SPOT = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "TRXUSDT")
# The per-endpoint per-second limit Bybit's headers report (its documented example).
BYBIT_ENDPOINT_LIMIT = 100
OKX_INSTRUMENTS = {"BTC-USDT", "ETH-USDT", "BNB-USDT", "SOL-USDT", "TRX-USDT"}
# The messages the venues send with their codes (`error_code` scenario); others say "Error".
BYBIT_MESSAGES = {
    10003: "API key is invalid.",
    10004: "Error sign, please check your signature generation algorithm.",
    10006: "Too many visits!",
    10016: "Internal system error.",
    10018: "Exceeded the IP Rate Limit.",
}
OKX_MESSAGES = {
    50001: "Service temporarily unavailable. Try again later.",
    50011: "Rate limit reached. Please refer to API documentation and throttle requests "
    "accordingly.",
    50013: "Systems are busy. Please try again later.",
}


def _num(value: float, places: int = 2) -> str:
    return f"{value:.{places}f}"


class Bybit(Provider):
    routes = {
        "/v5/market/time": "server_time",
        "/v5/market/tickers": "tickers",
        "/v5/market/orderbook": "orderbook",
    }
    server = "Openresty"

    def __init__(self, provider_id: str, *, key_required: bool | None = None) -> None:
        super().__init__(provider_id, key_required=key_required)
        self.books = BookMaker()
        self._second: dict[str, tuple[int, int]] = {}  # path -> (unix second, requests)

    def _envelope(self, ctx: Ctx, result: Any, *, code: int = 0, msg: str = "OK") -> Reply:
        return Reply(
            200,
            {
                "retCode": code,
                "retMsg": msg,
                "result": result,
                "retExtInfo": {},
                "time": ctx.view.unix_ms(),
            },
        )

    def server_time(self, ctx: Ctx) -> Reply:
        ms = ctx.view.unix_ms()
        return self._envelope(
            ctx, {"timeSecond": str(ms // 1000), "timeNano": f"{ms * 1_000_000 + 423_213}"}
        )

    def _ticker(self, ctx: Ctx, symbol: str) -> dict[str, Any]:
        base = symbol.removesuffix("USDT")
        last = ctx.view.price_in(base, "USDT") or 0.0
        places = 2 if last > 10 else 5
        return {
            "symbol": symbol,
            "bid1Price": _num(last * 0.99995, places),
            "bid1Size": "0.412378",
            "ask1Price": _num(last * 1.00005, places),
            "ask1Size": "1.059200",
            "lastPrice": _num(ticker_last(last, ctx.scenario), places),
            "prevPrice24h": _num(last / (1 + ASSETS[base].change_24h_pct / 100), places),
            "price24hPcnt": f"{ASSETS[base].change_24h_pct / 100:.4f}",
            "highPrice24h": _num(last * 1.006, places),
            "lowPrice24h": _num(last * 0.994, places),
            "turnover24h": _num(last * 9_000, 4),
            "volume24h": "9000.000000",
            "usdIndexPrice": _num(last * 0.9998, 6),
        }

    def tickers(self, ctx: Ctx) -> Reply:
        if ctx.arg("category") != "spot":
            return self._envelope(ctx, {}, code=10001, msg="Illegal category")
        symbol = ctx.arg("symbol")
        if symbol is not None and symbol.upper() not in BYBIT_SPOT:
            return self._envelope(ctx, {}, code=10001, msg="Not supported symbols")
        symbols = [symbol.upper()] if symbol else list(BYBIT_SPOT)
        return self._envelope(
            ctx, {"category": "spot", "list": [self._ticker(ctx, s) for s in symbols]}
        )

    def orderbook(self, ctx: Ctx) -> Reply:
        symbol = (ctx.arg("symbol") or "").upper()
        if ctx.arg("category") != "spot" or symbol not in BYBIT_SPOT:
            return self._envelope(ctx, {}, code=10001, msg="Not supported symbols")
        depth = ctx.int_arg("limit", 1, low=1, high=200)
        mid = ctx.view.price_in(symbol.removesuffix("USDT"), "USDT") or 0.0
        book = self.books.make(ctx.view, ctx.scenario, depth=depth, mid=mid)
        ts = ctx.view.unix_ms()
        return self._envelope(
            ctx,
            {
                "s": symbol,
                "b": levels(book.bids, price_places=2, size_places=6),
                "a": levels(book.asks, price_places=2, size_places=6),
                "ts": ts,
                "u": book.update_id,
                "seq": book.update_id * 7 + 1_432_604_333,
                "cts": ts - 126,
            },
        )

    def not_found(self, ctx: Ctx) -> Reply:
        return Reply(404, text="", content_type="text/plain")

    def auth_failure(self, ctx: Ctx) -> Reply:
        reply = self._envelope(ctx, {}, code=10003, msg="API key is invalid.")
        reply.status = 401
        return reply

    def rate_limited(self, ctx: Ctx) -> Reply:
        if ctx.scenario.params.get("http_status") == 403:
            page = status_page(403, "openresty").replace(
                "<hr>", "<p>access too frequent, please try again later</p><hr>"
            )
            return Reply(403, text=page, content_type=HTML)
        reply = self._envelope(ctx, {}, code=10006, msg="Too many visits!")
        reply.headers["X-Bapi-Limit-Status"] = "0"
        reply.headers["X-Bapi-Limit-Reset-Timestamp"] = str(ctx.view.unix_ms() + 1000)
        return reply

    def server_error(self, ctx: Ctx, status: int) -> Reply:
        reply = self._envelope(ctx, {}, code=10016, msg="Internal system error.")
        reply.status = status
        return reply

    def error_code(self, ctx: Ctx, code: int) -> Reply:
        return self._envelope(ctx, {}, code=code, msg=BYBIT_MESSAGES.get(code, "Error"))

    def extra_headers(self, ctx: Ctx, reply: Reply) -> dict[str, str]:
        if reply.status == 403 or ctx.path not in self.routes:
            return {}
        second = int(ctx.view.now)
        seen, count = self._second.get(ctx.path, (second, 0))
        count = (count if seen == second else 0) + 1
        self._second[ctx.path] = (second, count)
        headers = {
            "X-Bapi-Limit": str(BYBIT_ENDPOINT_LIMIT),
            "X-Bapi-Limit-Status": str(max(0, BYBIT_ENDPOINT_LIMIT - count)),
            "X-Bapi-Limit-Reset-Timestamp": str(int(ctx.view.now * 1000)),
        }
        headers.update(reply.headers)  # a rate-limited answer's own figures win
        return headers


class OKX(Provider):
    routes = {
        "/api/v5/public/time": "server_time",
        "/api/v5/market/ticker": "ticker",
        "/api/v5/market/books": "books",
    }
    server = "nginx"

    def __init__(self, provider_id: str, *, key_required: bool | None = None) -> None:
        super().__init__(provider_id, key_required=key_required)
        self.books_maker = BookMaker()

    @staticmethod
    def _ok(data: list[Any]) -> Reply:
        return Reply(200, {"code": "0", "msg": "", "data": data})

    @staticmethod
    def _error(status: int, code: str, msg: str) -> Reply:
        return Reply(status, {"code": code, "data": [], "msg": msg})

    def _instrument(self, ctx: Ctx) -> str | Reply:
        inst = ctx.arg("instId")
        if inst is None:
            return self._error(400, "50014", "Parameter instId can not be empty.")
        if inst not in OKX_INSTRUMENTS:
            return self._error(
                200,
                "51001",
                "Instrument ID, Instrument ID code or Spread ID doesn't exist.",
            )
        return inst

    def server_time(self, ctx: Ctx) -> Reply:
        return self._ok([{"ts": str(ctx.view.unix_ms())}])

    def ticker(self, ctx: Ctx) -> Reply:
        inst = self._instrument(ctx)
        if isinstance(inst, Reply):
            return inst
        last = ctx.view.price_in(inst.split("-")[0], "USDT") or 0.0
        places = 1 if last > 1000 else 4
        return self._ok(
            [
                {
                    "instType": "SPOT",
                    "instId": inst,
                    "last": _num(ticker_last(last, ctx.scenario), places),
                    "lastSz": "0.0021",
                    "askPx": _num(last * 1.00005, places),
                    "askSz": "0.63",
                    "bidPx": _num(last * 0.99995, places),
                    "bidSz": "1.2",
                    "open24h": _num(last / 1.0184, places),
                    "high24h": _num(last * 1.006, places),
                    "low24h": _num(last * 0.994, places),
                    "volCcy24h": _num(last * 7_200, 4),
                    "vol24h": "7200.0",
                    "sodUtc0": _num(last / 1.01, places),
                    "sodUtc8": _num(last / 1.012, places),
                    "ts": str(ctx.view.unix_ms()),
                }
            ]
        )

    def books(self, ctx: Ctx) -> Reply:
        inst = self._instrument(ctx)
        if isinstance(inst, Reply):
            return inst
        depth = ctx.int_arg("sz", 1, low=1, high=400)
        mid = ctx.view.price_in(inst.split("-")[0], "USDT") or 0.0
        book = self.books_maker.make(ctx.view, ctx.scenario, depth=depth, mid=mid)

        def rows(side: list[tuple[float, float]]) -> list[list[str]]:
            # OKX levels are [price, size, "0" (deprecated), number of orders].
            return [
                [*level, "0", str(1 + i % 7)]
                for i, level in enumerate(levels(side, price_places=1, size_places=8))
            ]

        return self._ok(
            [
                {
                    "asks": rows(book.asks),
                    "bids": rows(book.bids),
                    "ts": str(ctx.view.unix_ms()),
                    "seqId": book.update_id,
                }
            ]
        )

    def not_found(self, ctx: Ctx) -> Reply:
        return Reply(404, {"msg": "", "code": "50000"})

    def auth_failure(self, ctx: Ctx) -> Reply:
        return self._error(401, "50111", "Invalid OK-ACCESS-KEY.")

    def rate_limited(self, ctx: Ctx) -> Reply:
        if ctx.scenario.params.get("http_status") == 200:
            return self._error(
                200,
                "50011",
                "Rate limit reached. Please refer to API documentation and throttle "
                "requests accordingly.",
            )
        # The body seen on real 429s: no `data`, `msg` first.
        return Reply(429, {"msg": "Too Many Requests", "code": "50011"})

    def error_code(self, ctx: Ctx, code: int) -> Reply:
        return self._error(200, str(code), OKX_MESSAGES.get(code, "Error"))

    def server_error(self, ctx: Ctx, status: int) -> Reply:
        if status == 429:
            return self._error(429, "50013", "Systems are busy. Please try again later.")
        return self._error(status, "50001", "Service temporarily unavailable. Try again later.")
