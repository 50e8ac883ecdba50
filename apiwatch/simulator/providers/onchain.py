"""On-chain placeholders: The Graph gateway, Blockchair and Glassnode. Their catalogue
entries are disabled by default, but the simulator serves them so enabling one can be tried
offline.
"""

from __future__ import annotations

import json
import re
from typing import Any

from apiwatch.simulator.market import ASSETS, fake_hash
from apiwatch.simulator.providers.base import Ctx, Provider, Reply, reason

_SUBGRAPH = re.compile(r"^/api/(?:(?P<key>[0-9a-f]{32})/)?subgraphs/id/(?P<id>[A-Za-z0-9]+)$")


class TheGraph(Provider):
    """GraphQL over POST (or GET `?query=`). Any query is answered with the subgraph's `_meta`,
    which is what a health probe asks for; an empty POST is treated the same way."""

    key_sources = (("header", "Authorization", "Bearer "),)
    default_key_required = True
    server = "cloudflare"

    def find_route(self, path: str) -> Any:
        return self.query if _SUBGRAPH.match(path) else None

    def api_key(self, request: Any) -> str | None:
        # The older form carries the key in the path: /api/<key>/subgraphs/id/<id>.
        match = _SUBGRAPH.match("/" + request.path.lstrip("/").partition("/")[2])
        if match and match.group("key"):
            return match.group("key")
        return super().api_key(request)

    async def respond(self, ctx: Ctx) -> Reply:
        if self.find_route(ctx.path) is None:
            return self.not_found(ctx)
        if self.key_required and self.api_key(ctx.request) is None:
            return self.missing_key(ctx)
        query = ctx.arg("query")
        if ctx.request.method == "POST" and ctx.request.can_read_body:
            raw = await ctx.request.read()
            if raw.strip():
                try:
                    query = json.loads(raw).get("query")
                except (ValueError, AttributeError):
                    return self._errors(400, "Invalid query: body is not a GraphQL JSON request")
        return self.query(ctx, query)

    def query(self, ctx: Ctx, query: str | None = None) -> Reply:
        if query is not None and not query.strip().startswith(("{", "query")):
            return self._errors(200, "Failed to parse GraphQL query")
        height = ctx.view.block_height("ethereum")
        meta = {
            "block": {
                "number": height,
                "hash": "0x" + fake_hash(height),
                "timestamp": ctx.view.unix_s(offset_s=12),
            },
            "deployment": "Qm" + fake_hash(ctx.path, 44),
            "hasIndexingErrors": False,
        }
        return Reply(200, {"data": {"_meta": meta}})

    def _errors(self, status: int, message: str) -> Reply:
        return Reply(status, {"errors": [{"message": message}]})

    def not_found(self, ctx: Ctx) -> Reply:
        return self._errors(404, "subgraph not found: use /api/subgraphs/id/<id>")

    def missing_key(self, ctx: Ctx) -> Reply:
        return self._errors(401, "auth error: missing authorization header")

    def auth_failure(self, ctx: Ctx) -> Reply:
        return self._errors(401, "auth error: malformed API key")

    def rate_limited(self, ctx: Ctx) -> Reply:
        reply = self._errors(429, "Too many requests, try again later")
        reply.headers["Retry-After"] = str(ctx.scenario.params.get("retry_after", 60))
        return reply

    def server_error(self, ctx: Ctx, status: int) -> Reply:
        return self._errors(status, f"indexer error: {reason(status)}")


_BLOCKCHAIR_CHAINS = {"bitcoin": ("BTC", "bitcoin"), "ethereum": ("ETH", "ethereum")}


class Blockchair(Provider):
    routes = {f"/{name}/stats": "stats" for name in _BLOCKCHAIR_CHAINS}
    key_sources = (("query", "key", ""),)
    server = "nginx"

    def _context(self, ctx: Ctx, code: int, **extra: Any) -> dict[str, Any]:
        return {
            "code": code,
            "source": "A",
            "results": 1 if code == 200 else 0,
            "state": ctx.view.block_height("bitcoin"),
            "cache": {"live": True, "duration": 30, "since": ctx.view.sql_time(), "time": None},
            "api": {
                "version": "2.0.95",
                "last_major_update": "2022-11-07 02:00:00",
                "next_major_update": None,
                "documentation": "https://blockchair.com/api/docs",
                "notice": ":)",
            },
            "servers": "API4,BTC15",
            "time": ctx.view.unix_s(),
            "render_time": 0.0021,
            "full_time": 0.0034,
            "request_cost": 1,
        } | extra

    def stats(self, ctx: Ctx) -> Reply:
        name = ctx.path.split("/")[1]
        symbol, chain = _BLOCKCHAIR_CHAINS[name]
        asset = ASSETS[symbol]
        height = ctx.view.block_height(chain)
        price = ctx.view.price(symbol)
        data = {
            "blocks": height + 1,
            "transactions": 1_070_000_000 if symbol == "BTC" else 2_600_000_000,
            "circulation": int(asset.circulating_supply * 1e8),
            "blocks_24h": 144 if symbol == "BTC" else 7_200,
            "transactions_24h": 512_000,
            "difficulty": 92_671_576_265_161.06,
            "volume_24h": 512_000_000_000_000,
            "mempool_transactions": 41_250,
            "mempool_size": 27_500_000,
            "best_block_height": height,
            "best_block_hash": "00000000000000000002" + fake_hash(height, 44),
            "best_block_time": ctx.view.sql_time(offset_s=240),
            "market_price_usd": price,
            "market_price_btc": price / ctx.view.price("BTC"),
            "market_price_usd_change_24h_percentage": asset.change_24h_pct,
            "market_cap_usd": price * asset.circulating_supply,
            "market_dominance_percentage": 54.12 if symbol == "BTC" else 13.2,
            "suggested_transaction_fee_per_byte_sat": 4,
            "hodling_addresses": 55_000_000,
        }
        return Reply(200, {"data": data, "context": self._context(ctx, 200)})

    def _error(self, ctx: Ctx, status: int, message: str) -> Reply:
        return Reply(status, {"data": None, "context": self._context(ctx, status, error=message)})

    def not_found(self, ctx: Ctx) -> Reply:
        return self._error(ctx, 404, "Unknown endpoint. See https://blockchair.com/api/docs")

    def auth_failure(self, ctx: Ctx) -> Reply:
        return self._error(ctx, 403, "Invalid API key or the key has expired")

    def missing_key(self, ctx: Ctx) -> Reply:
        return self._error(ctx, 401, "An API key is required for this endpoint")

    def rate_limited(self, ctx: Ctx) -> Reply:
        reply = self._error(ctx, 429, "Too many requests. Limit exceeded, please use an API key")
        reply.headers["Retry-After"] = str(ctx.scenario.params.get("retry_after", 60))
        return reply

    def server_error(self, ctx: Ctx, status: int) -> Reply:
        return self._error(ctx, status, reason(status))


_INTERVALS = {"10m": 600, "1h": 3600, "24h": 86_400, "1w": 7 * 86_400}
_GLASSNODE_METRICS = {
    "/v1/metrics/market/price_usd_close": "price",
    "/v1/metrics/market/marketcap_usd": "marketcap",
    "/v1/metrics/addresses/active_count": "active",
}


class Glassnode(Provider):
    routes = dict.fromkeys(_GLASSNODE_METRICS, "metric")
    key_sources = (("query", "api_key", ""), ("header", "X-Api-Key", ""))
    default_key_required = True
    server = "cloudflare"

    def metric(self, ctx: Ctx) -> Reply:
        symbol = ctx.arg("a", "BTC").upper()
        if symbol not in ASSETS:
            return Reply(400, {"error": f"asset {symbol} is not supported for this metric"})
        interval = ctx.arg("i", "24h")
        if interval not in _INTERVALS:
            return Reply(400, {"error": f"interval must be one of {', '.join(_INTERVALS)}"})
        step = _INTERVALS[interval]
        last = int(ctx.view.data_time // step * step)
        kind = _GLASSNODE_METRICS[ctx.path]
        points = []
        for i in reversed(range(30)):
            price = ctx.view.price(symbol) * (1 - 0.002 * i)
            value: float = price
            if kind == "marketcap":
                value = price * ASSETS[symbol].circulating_supply
            elif kind == "active":
                value = 800_000 + 1_000 * (i % 7)
            points.append({"t": last - i * step, "v": value})
        return Reply(200, points)

    def not_found(self, ctx: Ctx) -> Reply:
        return Reply(404, {"error": "metric not found"})

    def missing_key(self, ctx: Ctx) -> Reply:
        return Reply(401, text="Unauthorized\n", content_type="text/plain; charset=utf-8")

    def auth_failure(self, ctx: Ctx) -> Reply:
        return Reply(401, text="Unauthorized\n", content_type="text/plain; charset=utf-8")

    def rate_limited(self, ctx: Ctx) -> Reply:
        return Reply(
            429,
            text="Too Many Requests\n",
            content_type="text/plain; charset=utf-8",
            headers={"Retry-After": str(ctx.scenario.params.get("retry_after", 60))},
        )

    def server_error(self, ctx: Ctx, status: int) -> Reply:
        return Reply(status, {"error": reason(status)})
