"""Price aggregators CoinMarketCap and CryptoCompare, with the response shapes, headers and
error bodies their public API docs describe. Both report an error inside the body as well as
(CMC) or instead of (CryptoCompare, always HTTP 200) the status code.
"""

from __future__ import annotations

from typing import Any

from apiwatch.simulator.market import ASSETS, BY_CMC_ID, Asset, View
from apiwatch.simulator.providers.base import Ctx, Provider, Reply, reason


class CoinMarketCap(Provider):
    routes = {
        "/v1/key/info": "key_info",
        "/v1/cryptocurrency/quotes/latest": "quotes_v1",
        "/v2/cryptocurrency/quotes/latest": "quotes_v2",
        "/v1/cryptocurrency/listings/latest": "listings",
    }
    key_sources = (("header", "X-CMC_PRO_API_KEY", ""), ("query", "CMC_PRO_API_KEY", ""))
    default_key_required = True
    server = "nginx"

    def _status(self, ctx: Ctx, code: int = 0, message: str | None = None) -> dict[str, Any]:
        return {
            "timestamp": ctx.view.iso_ms(),
            "error_code": code,
            "error_message": message,
            "elapsed": 7,
            "credit_count": 0 if code else 1,
            "notice": None,
        }

    def _error(self, ctx: Ctx, status: int, code: int, message: str) -> Reply:
        return Reply(status, {"status": self._status(ctx, code, message)})

    def _coin(self, ctx: Ctx, asset: Asset, converts: list[str]) -> dict[str, Any]:
        updated = ctx.view.iso_ms(offset_s=25)
        quote = {}
        for currency in converts:
            price = ctx.view.price_in(asset.symbol, currency) or 0.0
            scale = price / asset.price_usd if asset.price_usd else 0.0
            quote[currency] = {
                "price": price,
                "volume_24h": asset.volume_24h_usd * scale,
                "volume_change_24h": -3.1245,
                "percent_change_1h": 0.1183,
                "percent_change_24h": asset.change_24h_pct,
                "percent_change_7d": 4.0725,
                "market_cap": price * asset.circulating_supply,
                "market_cap_dominance": 54.12 if asset.symbol == "BTC" else 3.2,
                "fully_diluted_market_cap": price * (asset.max_supply or asset.circulating_supply),
                "last_updated": updated,
            }
        return {
            "id": asset.cmc_id,
            "name": asset.name,
            "symbol": asset.symbol,
            "slug": asset.coingecko_id,
            "num_market_pairs": 11_000,
            "date_added": "2013-04-28T00:00:00.000Z",
            "tags": ["mineable"] if asset.symbol == "BTC" else [],
            "max_supply": asset.max_supply,
            "circulating_supply": asset.circulating_supply,
            "total_supply": asset.circulating_supply,
            "is_active": 1,
            "platform": None,
            "cmc_rank": list(ASSETS).index(asset.symbol) + 1,
            "is_fiat": 0,
            "last_updated": updated,
            "quote": quote,
        }

    def _lookup(self, ctx: Ctx) -> tuple[list[tuple[str, Asset]], list[str]] | Reply:
        converts = (ctx.arg("convert") or "USD").upper().split(",")
        if ctx.arg("symbol"):
            found = []
            for symbol in ctx.arg("symbol", "").upper().split(","):
                if symbol not in ASSETS:
                    return self._error(ctx, 400, 400, f'Invalid value for "symbol": "{symbol}"')
                found.append((symbol, ASSETS[symbol]))
            return found, converts
        if ctx.arg("id"):
            found = []
            for raw in ctx.arg("id", "").split(","):
                asset = BY_CMC_ID.get(int(raw)) if raw.strip().isdigit() else None
                if asset is None:
                    return self._error(ctx, 400, 400, f'Invalid value for "id": "{raw}"')
                found.append((str(asset.cmc_id), asset))
            return found, converts
        return self._error(ctx, 400, 400, '"value" must contain at least one of [id, symbol, slug]')

    def quotes_v1(self, ctx: Ctx) -> Reply:
        found = self._lookup(ctx)
        if isinstance(found, Reply):
            return found
        coins, converts = found
        data = {key: self._coin(ctx, asset, converts) for key, asset in coins}
        return Reply(200, {"status": self._status(ctx), "data": data})

    def quotes_v2(self, ctx: Ctx) -> Reply:
        found = self._lookup(ctx)
        if isinstance(found, Reply):
            return found
        coins, converts = found
        data = {key: [self._coin(ctx, asset, converts)] for key, asset in coins}
        if ctx.arg("id"):  # by id, v2 keeps one object per id
            data = {key: value[0] for key, value in data.items()}
        return Reply(200, {"status": self._status(ctx), "data": data})

    def listings(self, ctx: Ctx) -> Reply:
        limit = ctx.int_arg("limit", 100, low=1, high=5000)
        converts = (ctx.arg("convert") or "USD").upper().split(",")
        data = [self._coin(ctx, asset, converts) for asset in list(ASSETS.values())[:limit]]
        status = self._status(ctx) | {"total_count": len(ASSETS)}
        return Reply(200, {"status": status, "data": data})

    def key_info(self, ctx: Ctx) -> Reply:
        calls = ctx.state.calls[self.id]
        minute = calls.get("minute")
        day_credits, month_credits = calls.get("day"), calls.get("month")
        plan = {
            "credit_limit_monthly": 10000,
            "credit_limit_monthly_reset": "In 19 days, 6 hours, 4 minutes",
            "credit_limit_monthly_reset_timestamp": ctx.view.iso_ms(offset_s=-19 * 86_400),
            "rate_limit_minute": 30,
        }
        usage = {
            "current_minute": {"requests_made": minute, "requests_left": max(0, 30 - minute)},
            "current_day": {"credits_used": day_credits},
            "current_month": {
                "credits_used": month_credits,
                "credits_left": max(0, 10000 - month_credits),
            },
        }
        status = self._status(ctx) | {"credit_count": 0}
        return Reply(200, {"status": status, "data": {"plan": plan, "usage": usage}})

    def not_found(self, ctx: Ctx) -> Reply:
        return self._error(ctx, 404, 404, "Not found")

    def missing_key(self, ctx: Ctx) -> Reply:
        return self._error(ctx, 401, 1002, "API key missing.")

    def auth_failure(self, ctx: Ctx) -> Reply:
        return self._error(ctx, 401, 1001, "This API Key is invalid.")

    def rate_limited(self, ctx: Ctx) -> Reply:
        return self._error(
            ctx,
            429,
            1008,
            "You've exceeded your API Key's HTTP request rate limit. "
            "Rate limits reset every minute.",
        )

    def server_error(self, ctx: Ctx, status: int) -> Reply:
        return self._error(ctx, status, status, "An internal server error occurred.")


class CryptoCompare(Provider):
    routes = {
        "/stats/rate/limit": "rate_limit_stats",
        "/data/price": "price",
        "/data/pricemulti": "pricemulti",
        "/data/pricemultifull": "pricemultifull",
    }
    key_sources = (
        ("header", "authorization", "Apikey "),
        ("query", "api_key", ""),
        ("query", "apiKey", ""),
    )
    server = "nginx"
    max_calls = {"second": 20, "minute": 300, "hour": 3000, "day": 7500, "month": 50000}

    def _calls_made(self, ctx: Ctx) -> dict[str, int]:
        calls = ctx.state.calls[self.id]
        made = {window: calls.get(window) for window in self.max_calls}
        return made | {"total_calls": calls.total}

    def _error(self, message: str, type_: int, **extra: Any) -> Reply:
        body = {
            "Response": "Error",
            "Message": message,
            "HasWarning": False,
            "Type": type_,
            "RateLimit": {},
            "Data": {},
        }
        return Reply(200, body | extra)

    def _symbols(self, ctx: Ctx, name: str) -> list[str] | Reply:
        raw = ctx.arg(name)
        if raw is None:
            return self._error(f"{name} is a required param.", 2, ParamWithError=name)
        return [s.strip().upper() for s in raw.split(",") if s.strip()]

    def _prices(self, ctx: Ctx) -> dict[str, dict[str, float]] | Reply:
        fsyms = self._symbols(ctx, "fsyms" if "fsyms" in ctx.query else "fsym")
        tsyms = self._symbols(ctx, "tsyms")
        if isinstance(fsyms, Reply):
            return fsyms
        if isinstance(tsyms, Reply):
            return tsyms
        table: dict[str, dict[str, float]] = {}
        for fsym in fsyms:
            row = {}
            for tsym in tsyms:
                price = ctx.view.price_in(fsym, tsym) if fsym in ASSETS else None
                if price is not None:
                    row[tsym] = price
            if row:
                table[fsym] = row
        if not table:
            pair = f"{fsyms[0] if fsyms else ''}-{tsyms[0] if tsyms else ''}"
            return self._error(
                f"cccagg_or_exchange market does not exist for this coin pair ({pair})",
                2,
                ParamWithError="fsym",
            )
        return table

    def rate_limit_stats(self, ctx: Ctx) -> Reply:
        made = self._calls_made(ctx)
        left = {w: max(0, limit - made[w]) for w, limit in self.max_calls.items()}
        return Reply(
            200,
            {
                "Response": "Success",
                "Message": "",
                "HasWarning": False,
                "Type": 100,
                "RateLimit": {},
                "Data": {"calls_made": made, "calls_left": left},
            },
        )

    def price(self, ctx: Ctx) -> Reply:
        table = self._prices(ctx)
        return table if isinstance(table, Reply) else Reply(200, next(iter(table.values())))

    def pricemulti(self, ctx: Ctx) -> Reply:
        table = self._prices(ctx)
        return table if isinstance(table, Reply) else Reply(200, table)

    def pricemultifull(self, ctx: Ctx) -> Reply:
        table = self._prices(ctx)
        if isinstance(table, Reply):
            return table
        raw: dict[str, dict[str, Any]] = {}
        display: dict[str, dict[str, Any]] = {}
        for fsym, row in table.items():
            asset = ASSETS[fsym]
            raw[fsym], display[fsym] = {}, {}
            for tsym, price in row.items():
                raw[fsym][tsym] = _cc_raw(ctx.view, asset, tsym, price)
                display[fsym][tsym] = {
                    "FROMSYMBOL": fsym,
                    "TOSYMBOL": tsym,
                    "MARKET": "CryptoCompare Index",
                    "PRICE": f"{tsym} {price:,.2f}",
                    "LASTUPDATE": "Just now",
                    "CHANGEPCT24HOUR": f"{asset.change_24h_pct:.2f}",
                }
        return Reply(200, {"RAW": raw, "DISPLAY": display})

    def not_found(self, ctx: Ctx) -> Reply:
        reply = self._error("Path does not exist", 2, Path=ctx.path)
        reply.status = 404
        return reply

    def missing_key(self, ctx: Ctx) -> Reply:
        return self.auth_failure(ctx)

    def auth_failure(self, ctx: Ctx) -> Reply:
        return self._error("You need a valid auth key or api key to access this endpoint", 1)

    def rate_limited(self, ctx: Ctx) -> Reply:
        reply = self._error("You are over your rate limit please upgrade your account!", 99)
        reply.payload["RateLimit"] = {
            "calls_made": self._calls_made(ctx),
            "max_calls": dict(self.max_calls),
        }
        return reply

    def server_error(self, ctx: Ctx, status: int) -> Reply:
        reply = self._error(f"Server error: {reason(status)}", 1)
        reply.status = status
        return reply

    def extra_headers(self, ctx: Ctx, reply: Reply) -> dict[str, str]:
        headers = {
            "X-CryptoCompare-Cache-HIT": "false",
            "X-CryptoCompare-Server-Id": "cc-api-min-v2-27",
            "Cache-Control": "no-cache, no-store",
        }
        if reply.text is None:
            headers["Content-Type"] = "application/json; charset=UTF-8"
        return headers


def _cc_raw(view: View, asset: Asset, tsym: str, price: float) -> dict[str, Any]:
    open_24h = price / (1 + asset.change_24h_pct / 100)
    volume = asset.volume_24h_usd / asset.price_usd / 4
    return {
        "TYPE": "5",
        "MARKET": "CCCAGG",
        "FROMSYMBOL": asset.symbol,
        "TOSYMBOL": tsym,
        "FLAGS": "2049",
        "PRICE": price,
        "LASTUPDATE": view.unix_s(offset_s=3),
        "MEDIAN": price,
        "LASTVOLUME": 0.0123,
        "LASTVOLUMETO": 0.0123 * price,
        "LASTTRADEID": "1714568400123",
        "VOLUMEDAY": volume / 2,
        "VOLUMEDAYTO": volume / 2 * price,
        "VOLUME24HOUR": volume,
        "VOLUME24HOURTO": volume * price,
        "OPENDAY": open_24h,
        "HIGHDAY": max(price, open_24h) * 1.004,
        "LOWDAY": min(price, open_24h) * 0.996,
        "OPEN24HOUR": open_24h,
        "HIGH24HOUR": max(price, open_24h) * 1.006,
        "LOW24HOUR": min(price, open_24h) * 0.994,
        "LASTMARKET": "Coinbase",
        "CHANGE24HOUR": price - open_24h,
        "CHANGEPCT24HOUR": asset.change_24h_pct,
        "CHANGEDAY": price - open_24h,
        "CHANGEPCTDAY": asset.change_24h_pct,
        "SUPPLY": asset.circulating_supply,
        "MKTCAP": price * asset.circulating_supply,
        "CIRCULATINGSUPPLY": asset.circulating_supply,
        "CIRCULATINGSUPPLYMKTCAP": price * asset.circulating_supply,
        "TOTALVOLUME24H": volume * 3,
        "TOTALVOLUME24HTO": volume * 3 * price,
        "IMAGEURL": f"/media/37746251/{asset.symbol.lower()}.png",
    }
