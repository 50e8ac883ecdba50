"""CoinGecko v3 (public/Demo): `/ping`, `/simple/price`, `/key`, with its JSON errors and the
Cloudflare HTML page it sometimes sends instead of JSON.
"""

from __future__ import annotations

from typing import Any

from apiwatch.simulator.market import BY_COINGECKO_ID, View
from apiwatch.simulator.providers.base import HTML, Ctx, Provider, Reply, reason


class CoinGecko(Provider):
    routes = {
        "/api/v3/ping": "ping",
        "/api/v3/simple/price": "simple_price",
        "/api/v3/key": "key_info",
    }
    key_sources = (
        ("header", "x-cg-demo-api-key", ""),
        ("header", "x-cg-pro-api-key", ""),
        ("query", "x_cg_demo_api_key", ""),
        ("query", "x_cg_pro_api_key", ""),
    )
    server = "cloudflare"

    def ping(self, ctx: Ctx) -> Reply:
        return Reply(200, {"gecko_says": "(V3) To the Moon!"})

    def simple_price(self, ctx: Ctx) -> Reply:
        vs = ctx.arg("vs_currencies")
        if vs is None:
            return Reply(400, {"error": "Missing parameter vs_currencies"})
        flags = {
            name: ctx.arg(f"include_{name}", "false").lower() == "true"
            for name in ("market_cap", "24hr_vol", "24hr_change", "last_updated_at")
        }
        body: dict[str, Any] = {}
        for coin_id in (ctx.arg("ids") or "").split(","):
            asset = BY_COINGECKO_ID.get(coin_id.strip().lower())
            if asset is None:
                continue  # unknown ids are silently left out, as CoinGecko does
            entry: dict[str, Any] = {}
            for currency in vs.lower().split(","):
                price = ctx.view.price_in(asset.symbol, currency)
                if price is None:
                    continue
                entry[currency] = price
                if flags["market_cap"]:
                    entry[f"{currency}_market_cap"] = price * asset.circulating_supply
                if flags["24hr_vol"]:
                    entry[f"{currency}_24h_vol"] = asset.volume_24h_usd * price / asset.price_usd
                if flags["24hr_change"]:
                    entry[f"{currency}_24h_change"] = asset.change_24h_pct
            if flags["last_updated_at"]:
                entry["last_updated_at"] = ctx.view.unix_s(offset_s=12)
            body[asset.coingecko_id] = entry
        return Reply(200, body)

    def key_info(self, ctx: Ctx) -> Reply:
        if self.api_key(ctx.request) is None:
            return self.missing_key(ctx)
        used = ctx.state.calls[self.id].get("month")
        return Reply(
            200,
            {
                "plan": "Demo",
                "rate_limit_request_per_minute": 100,
                "monthly_call_credit": 10000,
                "current_total_monthly_calls": used,
                "current_remaining_monthly_calls": max(0, 10000 - used),
            },
        )

    def _status_error(self, ctx: Ctx, status: int, code: int, message: str) -> Reply:
        return Reply(
            status,
            {
                "status": {
                    "timestamp": _cg_time(ctx.view),
                    "error_code": code,
                    "error_message": message,
                }
            },
        )

    def not_found(self, ctx: Ctx) -> Reply:
        return Reply(404, {"error": "Incorrect path. Please check https://www.coingecko.com/api/"})

    def missing_key(self, ctx: Ctx) -> Reply:
        return self._status_error(ctx, 401, 10002, _CG_KEY_MESSAGE)

    def auth_failure(self, ctx: Ctx) -> Reply:
        # CoinGecko answers a wrong key with the same 10002 body as a missing one.
        return self._status_error(ctx, 401, 10002, _CG_KEY_MESSAGE)

    def rate_limited(self, ctx: Ctx) -> Reply:
        reply = Reply(
            429,
            {"status": {"error_code": 429, "error_message": _CG_RATE_MESSAGE}},
        )
        reply.headers["retry-after"] = str(ctx.scenario.params.get("retry_after", 60))
        return reply

    def server_error(self, ctx: Ctx, status: int) -> Reply:
        return self._status_error(ctx, status, status, reason(status))

    def html_error(self, ctx: Ctx, status: int | None) -> Reply:
        status = status or 429
        reply = Reply(status, text=_cloudflare_page(status), content_type=HTML)
        if status == 429:
            reply.headers["retry-after"] = str(ctx.scenario.params.get("retry_after", 60))
        return reply

    def extra_headers(self, ctx: Ctx, reply: Reply) -> dict[str, str]:
        return {"cf-ray": f"8{ctx.state.calls[self.id].total:015x}-AMS", "cf-cache-status": "MISS"}


_CG_KEY_MESSAGE = (
    "API Key Missing. Please make sure you're using the right authentication method. "
    "For more information please refer to https://docs.coingecko.com/reference/authentication"
)
_CG_RATE_MESSAGE = (
    "You've exceeded the Rate Limit. Please visit https://www.coingecko.com/en/api/pricing "
    "to subscribe to our API plans for higher rate limits."
)


def _cg_time(view: View) -> str:
    return view.iso_ms().replace("Z", "+00:00")


def _cloudflare_page(status: int) -> str:
    if status == 429:
        headline, detail = "Error 1015", "You are being rate limited"
    else:
        headline, detail = f"Error {status}", reason(status)
    return (
        '<!DOCTYPE html>\n<html lang="en-US">\n<head>\n'
        "<title>Access denied | api.coingecko.com used Cloudflare to restrict access</title>\n"
        '<meta charset="UTF-8" />\n</head>\n<body>\n<div id="cf-wrapper">\n'
        f'<div id="cf-error-details"><h1><span class="cf-error-type">{headline}</span></h1>\n'
        f"<h2>{detail}</h2>\n"
        "<p>The owner of this website (api.coingecko.com) has banned you temporarily from "
        "accessing this website.</p>\n"
        '<span class="cf-footer-item">Performance &amp; security by Cloudflare</span>\n'
        "</div>\n</div>\n</body>\n</html>\n"
    )
