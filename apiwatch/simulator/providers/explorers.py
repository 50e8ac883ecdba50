"""Block explorers: Etherscan API V2 (also serving BscScan as chainid 56) and TronScan,
with the response shapes their public API docs give.

Etherscan answers everything, errors and rate limits included, with HTTP 200 and
`{"status": "0", "message": "NOTOK", "result": "<reason>"}`. A key starting with `free`
behaves like a free-tier key: BNB Smart Chain (56, 97) then answers "Free API access is not
supported for this chain", as the real free tier does.
"""

from __future__ import annotations

from typing import Any

from apiwatch.simulator.market import ASSETS, fake_hash
from apiwatch.simulator.providers.base import HTML, Ctx, Provider, Reply, reason, status_page

# chain id -> (native symbol, chain name for block heights)
CHAINS = {
    1: ("ETH", "ethereum"),
    11155111: ("ETH", "ethereum"),
    17000: ("ETH", "ethereum"),
    56: ("BNB", "bsc"),
    97: ("BNB", "bsc"),
}
_FREE_TIER_EXCLUDED = {56, 97}
_GAS_GWEI = {"ETH": (0.61, 0.72, 0.95), "BNB": (0.1, 0.1, 0.11)}


def _notok(result: str) -> Reply:
    return Reply(200, {"status": "0", "message": "NOTOK", "result": result})


def _ok(result: Any) -> Reply:
    return Reply(200, {"status": "1", "message": "OK", "result": result})


class EtherscanV2(Provider):
    routes = {"/v2/api": "v2_api", "/api": "v1_api"}
    key_sources = (("query", "apikey", ""),)
    default_key_required = True
    server = "cloudflare"

    async def respond(self, ctx: Ctx) -> Reply:
        # V1 answers its deprecation notice whatever the key; V2 checks the key first.
        if ctx.path == "/api":
            return self.v1_api(ctx)
        return await super().respond(ctx)

    def v1_api(self, ctx: Ctx) -> Reply:
        return _notok(
            "You are using a deprecated V1 endpoint, switch to Etherscan API V2 using "
            "https://docs.etherscan.io/v2-migration"
        )

    def v2_api(self, ctx: Ctx) -> Reply:
        raw_chain = ctx.arg("chainid", "")
        chain = int(raw_chain) if raw_chain.isdigit() else None
        if chain not in CHAINS:
            return _notok(
                "Missing or unsupported chainid parameter (required for v2 api), please see "
                "https://api.etherscan.io/v2/chainlist for the list of supported chainids"
            )
        key = self.api_key(ctx.request) or ""
        if chain in _FREE_TIER_EXCLUDED and key.lower().startswith("free"):
            return _notok(
                "Free API access is not supported for this chain. Please upgrade your api plan "
                "for full chain coverage. https://etherscan.io/apis"
            )
        native, chain_name = CHAINS[chain]
        module, action = ctx.arg("module", ""), ctx.arg("action", "")
        symbol = native.lower()
        actions = {
            "stats": {
                f"{symbol}supply": lambda: self._supply(native),
                f"{symbol}price": lambda: self._price(ctx, native),
                "ethsupply": lambda: self._supply(native),
                "ethprice": lambda: self._price(ctx, native),
            },
            "gastracker": {"gasoracle": lambda: self._gas(ctx, native, chain_name)},
            "getapilimit": {"getapilimit": lambda: self._api_limit(ctx)},
            "proxy": {
                "eth_blockNumber": lambda: Reply(
                    200,
                    {
                        "jsonrpc": "2.0",
                        "id": 83,
                        "result": hex(ctx.view.block_height(chain_name)),
                    },
                )
            },
        }
        if module not in actions:
            return _notok("Error! Missing Or invalid Module name")
        handler = actions[module].get(action)
        if handler is None:
            return _notok("Error! Missing Or invalid Action name")
        return handler()

    def _supply(self, native: str) -> Reply:
        whole = int(ASSETS[native].circulating_supply)
        return _ok(f"{whole}{217800000000000000:018d}")

    def _price(self, ctx: Ctx, native: str) -> Reply:
        stamp = str(ctx.view.unix_s(offset_s=9))
        usd = ctx.view.price_in(native, "USD") or 0.0
        btc = ctx.view.price_in(native, "BTC") or 0.0
        return _ok(
            {
                "ethbtc": f"{btc:.5f}",
                "ethbtc_timestamp": stamp,
                "ethusd": f"{usd:.2f}",
                "ethusd_timestamp": stamp,
            }
        )

    def _gas(self, ctx: Ctx, native: str, chain_name: str) -> Reply:
        safe, propose, fast = _GAS_GWEI[native]
        return _ok(
            {
                "LastBlock": str(ctx.view.block_height(chain_name)),
                "SafeGasPrice": f"{safe:.9f}".rstrip("0").rstrip("."),
                "ProposeGasPrice": f"{propose:.9f}".rstrip("0").rstrip("."),
                "FastGasPrice": f"{fast:.9f}".rstrip("0").rstrip("."),
                "suggestBaseFee": f"{safe * 0.93:.9f}",
                "gasUsedRatio": "0.4533217,0.5172034,0.3900514,0.9981327,0.4407791",
            }
        )

    def _api_limit(self, ctx: Ctx) -> Reply:
        used = ctx.state.calls[self.id].get("day")
        left = ctx.view.data_time % 86_400
        remaining = 86_400 - int(left)
        return _ok(
            {
                "creditsUsed": used,
                "creditsAvailable": max(0, 100_000 - used),
                "creditLimit": 100_000,
                "limitInterval": "daily",
                "intervalExpiryTimespan": (
                    f"{remaining // 3600:02d}:{remaining % 3600 // 60:02d}:{remaining % 60:02d}"
                ),
            }
        )

    def not_found(self, ctx: Ctx) -> Reply:
        return Reply(404, text=status_page(404, "cloudflare"), content_type=HTML)

    def missing_key(self, ctx: Ctx) -> Reply:
        return _notok("Missing/Invalid API Key")

    def auth_failure(self, ctx: Ctx) -> Reply:
        return _notok("Invalid API Key (#err2)")

    def rate_limited(self, ctx: Ctx) -> Reply:
        return _notok("Max rate limit reached, please use API Key for higher rate limit")

    def server_error(self, ctx: Ctx, status: int) -> Reply:
        return Reply(status, text=status_page(status, "cloudflare"), content_type=HTML)


class TronScan(Provider):
    routes = {"/api/system/status": "system_status", "/api/block": "blocks"}
    key_sources = (("header", "TRON-PRO-API-KEY", ""),)
    server = "nginx"
    gateway_footer = "nginx"

    def system_status(self, ctx: Ctx) -> Reply:
        head = ctx.view.block_height("tron")
        return Reply(
            200,
            {
                "database": {"block": head, "confirmedBlock": head - 19},
                "sync": {"progress": 99.99999732599234},
                "network": {"type": "mainnet"},
                "full": {"block": head},
                "solidity": {"block": head - 19},
            },
        )

    def blocks(self, ctx: Ctx) -> Reply:
        limit = ctx.int_arg("limit", 10, low=1, high=200)
        start = ctx.int_arg("start", 0, low=0, high=10_000)
        head = ctx.view.block_height("tron")
        latest_ms = ctx.view.unix_ms(offset_s=1.5)
        order = -1 if ctx.arg("sort", "-number").startswith("-") else 1
        numbers = [head - start - i for i in range(limit)]
        if order == 1:
            numbers = [start + i for i in range(limit)]
        data = []
        for number in numbers:
            data.append(
                {
                    "number": number,
                    "hash": f"{number:016x}" + fake_hash(number, 48),
                    "size": 45_210,
                    "timestamp": latest_ms - (head - number) * 3000,
                    "txTrieRoot": fake_hash(("trie", number), 56),
                    "parentHash": f"{number - 1:016x}" + fake_hash(number - 1, 48),
                    "witnessId": 0,
                    "witnessAddress": "TJBtdYunmQkeK5KninwgcjuK1RPDhyUWBZ",
                    "nrOfTrx": 280 + number % 90,
                    "witnessName": "JD Investment",
                    "confirmed": head - number >= 19,
                    "confirmations": head - number,
                    "fee": 0,
                    "blockReward": 16,
                    "voteReward": 160,
                    "revert": False,
                }
            )
        return Reply(
            200,
            {
                "total": head,
                "rangeTotal": head,
                "data": data,
                "contractMap": {},
                "contractInfo": {},
            },
        )

    def not_found(self, ctx: Ctx) -> Reply:
        return Reply(
            404,
            {"timestamp": ctx.view.iso_ms(), "status": 404, "error": "Not Found", "path": ctx.path},
        )

    def missing_key(self, ctx: Ctx) -> Reply:
        return Reply(401, {"code": 401, "message": "ApiKey not exists"})

    def auth_failure(self, ctx: Ctx) -> Reply:
        return Reply(401, {"code": 401, "message": "ApiKey not exists"})

    def rate_limited(self, ctx: Ctx) -> Reply:
        return Reply(403, {"code": 403, "message": "request too quickly, please retry later."})

    def server_error(self, ctx: Ctx, status: int) -> Reply:
        return Reply(status, {"code": status, "message": reason(status)})

    def html_error(self, ctx: Ctx, status: int | None) -> Reply:
        status = status or 403
        return Reply(status, text=status_page(status, "nginx"), content_type=HTML)
