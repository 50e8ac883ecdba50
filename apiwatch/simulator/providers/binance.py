"""Binance spot REST v3: request weights with a real per-minute used-weight counter reported
in `X-MBX-USED-WEIGHT-1M`, the order book (`/depth`, weight by `limit`), and the 429 → 418
ban escalation.
"""

from __future__ import annotations

import json
from typing import Any

from apiwatch.simulator.books import BookMaker, levels, ticker_last
from apiwatch.simulator.market import ASSETS
from apiwatch.simulator.providers.base import Ctx, Provider, Reply

QUOTES = ("USDT", "BTC", "USDC")
SYMBOLS = {
    f"{base}{quote}": (base, quote)
    for base in ASSETS
    for quote in QUOTES
    if base != quote and base != "USDT"
}
WEIGHT_LIMIT = 6000


class Binance(Provider):
    routes = {
        "/api/v3/ping": "ping",
        "/api/v3/time": "server_time",
        "/api/v3/ticker/24hr": "ticker_24hr",
        "/api/v3/ticker/price": "ticker_price",
        "/api/v3/depth": "depth",
    }
    key_sources = (("header", "X-MBX-APIKEY", ""),)
    server = "nginx"

    def __init__(self, provider_id: str, *, key_required: bool | None = None) -> None:
        super().__init__(provider_id, key_required=key_required)
        self.books = BookMaker()

    def weight(self, ctx: Ctx) -> int:
        if ctx.path == "/api/v3/depth":
            limit = ctx.int_arg("limit", 100, low=1, high=5000)
            return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250
        if ctx.path in ("/api/v3/ticker/24hr", "/api/v3/ticker/price"):
            count = self._symbol_count(ctx)
            if ctx.path.endswith("price"):
                return 2 if count == 1 else 4
            if count is None:
                return 80
            return 2 if count <= 20 else 40 if count <= 100 else 80
        return 1

    def _symbol_count(self, ctx: Ctx) -> int | None:
        if ctx.arg("symbol"):
            return 1
        symbols = ctx.arg("symbols")
        if symbols is None:
            return None
        try:
            return max(1, len(json.loads(symbols)))
        except (ValueError, TypeError):
            return 1

    def _requested(self, ctx: Ctx) -> list[str] | Reply | None:
        """The symbols asked for: a list, None for all, or the -1100/-1121 error."""
        if ctx.arg("symbol"):
            symbol = ctx.arg("symbol", "").upper()
            return [symbol] if symbol in SYMBOLS else _invalid_symbol()
        raw = ctx.arg("symbols")
        if raw is None:
            return None
        try:
            symbols = json.loads(raw)
            if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
                raise ValueError(raw)
        except ValueError:
            return Reply(
                400,
                {
                    "code": -1100,
                    "msg": "Illegal characters found in parameter 'symbols'; legal range is "
                    '\'^\\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\\]$\'.',
                },
            )
        if any(s not in SYMBOLS for s in symbols):
            return _invalid_symbol()
        return symbols

    def ping(self, ctx: Ctx) -> Reply:
        return Reply(200, {})

    def server_time(self, ctx: Ctx) -> Reply:
        return Reply(200, {"serverTime": ctx.view.unix_ms()})

    def _price(self, ctx: Ctx, symbol: str) -> float:
        base, quote = SYMBOLS[symbol]
        return ctx.view.price_in(base, quote) or 0.0

    def _ticker(self, ctx: Ctx, symbol: str) -> dict[str, Any]:
        base, _ = SYMBOLS[symbol]
        asset = ASSETS[base]
        last = self._price(ctx, symbol)
        open_ = last / (1 + asset.change_24h_pct / 100)
        volume = asset.volume_24h_usd / asset.price_usd / 5
        close_ms = ctx.view.unix_ms()
        first_id = 3_500_000_000 + int(close_ms // 1000) % 1_000_000
        return {
            "symbol": symbol,
            "priceChange": _num(last - open_),
            "priceChangePercent": f"{asset.change_24h_pct:.3f}",
            "weightedAvgPrice": _num((last + open_) / 2),
            "prevClosePrice": _num(open_),
            "lastPrice": _num(ticker_last(last, ctx.scenario)),
            "lastQty": "0.00150000",
            "bidPrice": _num(last * 0.99999),
            "bidQty": "2.41035000",
            "askPrice": _num(last * 1.00001),
            "askQty": "0.51220000",
            "openPrice": _num(open_),
            "highPrice": _num(max(last, open_) * 1.006),
            "lowPrice": _num(min(last, open_) * 0.994),
            "volume": _num(volume),
            "quoteVolume": _num(volume * last),
            "openTime": close_ms - 86_400_000,
            "closeTime": close_ms,
            "firstId": first_id,
            "lastId": first_id + 1_250_000,
            "count": 1_250_001,
        }

    def ticker_24hr(self, ctx: Ctx) -> Reply:
        requested = self._requested(ctx)
        if isinstance(requested, Reply):
            return requested
        if ctx.arg("symbol"):
            return Reply(200, self._ticker(ctx, requested[0]))
        return Reply(200, [self._ticker(ctx, s) for s in requested or SYMBOLS])

    def ticker_price(self, ctx: Ctx) -> Reply:
        requested = self._requested(ctx)
        if isinstance(requested, Reply):
            return requested
        rows = [{"symbol": s, "price": _num(self._price(ctx, s))} for s in requested or SYMBOLS]
        return Reply(200, rows[0] if ctx.arg("symbol") else rows)

    def depth(self, ctx: Ctx) -> Reply:
        symbol = (ctx.arg("symbol") or "").upper()
        if not symbol:
            return Reply(
                400,
                {
                    "code": -1102,
                    "msg": "Mandatory parameter 'symbol' was not sent, was empty/null, or "
                    "malformed.",
                },
            )
        if symbol not in SYMBOLS:
            return _invalid_symbol()
        limit = ctx.int_arg("limit", 100, low=1, high=5000)
        book = self.books.make(ctx.view, ctx.scenario, depth=limit, mid=self._price(ctx, symbol))
        return Reply(
            200,
            {
                "lastUpdateId": book.update_id,
                "bids": levels(book.bids, price_places=8, size_places=8),
                "asks": levels(book.asks, price_places=8, size_places=8),
            },
        )

    def not_found(self, ctx: Ctx) -> Reply:
        return Reply(
            404, text="<html><body><h2>404 Not found</h2></body></html>", content_type="text/html"
        )

    def auth_failure(self, ctx: Ctx) -> Reply:
        return Reply(401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."})

    def rate_limited(self, ctx: Ctx) -> Reply:
        params = ctx.scenario.params
        ctx.state.consecutive_limited[self.id] += 1
        if ctx.state.consecutive_limited[self.id] > params.get("ban_after", 3):
            ban_s = params.get("ban_s", 120)
            until_ms = int(ctx.view.now * 1000) + ban_s * 1000
            return Reply(
                418,
                {
                    "code": -1003,
                    "msg": f"Way too much request weight used; IP banned until {until_ms}. "
                    "Please use WebSocket Streams for live updates to avoid bans.",
                },
                headers={"Retry-After": str(ban_s)},
            )
        return Reply(
            429,
            {
                "code": -1003,
                "msg": f"Too much request weight used; current limit is {WEIGHT_LIMIT} request "
                "weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid "
                "polling the API.",
            },
            headers={"Retry-After": str(params.get("retry_after", 60))},
        )

    def server_error(self, ctx: Ctx, status: int) -> Reply:
        if status == 503:
            msg = {"code": -1008, "msg": "Server is currently overloaded with other requests."}
        else:
            msg = {
                "code": -1001,
                "msg": "Internal error; unable to process your request. Please try again.",
            }
        return Reply(status, msg)

    def extra_headers(self, ctx: Ctx, reply: Reply) -> dict[str, str]:
        used = ctx.state.weight[self.id].get("minute")
        return {"X-MBX-USED-WEIGHT-1M": str(used), "X-MBX-USED-WEIGHT": str(used)}


def _invalid_symbol() -> Reply:
    return Reply(400, {"code": -1121, "msg": "Invalid symbol."})


def _num(value: float) -> str:
    """Binance sends every decimal as a string with eight places."""
    return f"{value:.8f}"
