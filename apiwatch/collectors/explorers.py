"""Block explorer collectors: gas prices and network stats from Etherscan V2 (Ethereum,
and BNB Smart Chain as chainid 56, which is what BscScan now is) and TronScan.

Items: `ETH-gas` / `BSC-gas` (value: the proposed gas price in gwei; safe/propose/fast in
`values`), `ETH-last_block` / `BSC-last_block`, `ETH-USD` / `BNB-USD` (the explorer's own
price, category blockchain_explorers, so it does not vote in market consensus),
`ETH-supply` (in ETH; the wei string in `values`), `TRX-last_block`.

Etherscan answers everything with HTTP 200 and `status` "1" or "0" (strings); on "0"
`result` is an error text where an object belongs. The gas oracle carries no time of its
own (only `LastBlock`), so its points have no data timestamp and their freshness is
`unknown`, which is the truth; `ethprice` has `ethusd_timestamp` (unix seconds, a string).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from apiwatch.collectors import parse
from apiwatch.collectors.base import CollectorError, DataPoint, collector

_WEI_PER_ETH_EXPONENT = -18


def _etherscan_result(payload: Any) -> Any:
    body = parse.obj(payload, "$")
    status = body.get("status")
    if status != "1":
        shown = status if status in ("0", None) else "unexpected"
        raise CollectorError(f"$.status is {shown!r}, not '1': the payload is an error")
    return parse.at(body, "result")


def _gas_ratios(value: Any, where: str) -> list[str]:
    """`gasUsedRatio` is one comma-separated string of recent blocks' ratios."""
    if value is None or value == "":
        return []
    if not isinstance(value, str) or len(value) > 2000:
        raise CollectorError(f"{where} should be comma-separated ratios, got {parse.kind(value)}")
    return [
        parse.plain(parse.bounded(part, f"{where}[{i}]", low=0, high=10))
        for i, part in enumerate(value.split(","))
    ]


def gas_oracle(chain: str) -> Callable[..., list[DataPoint]]:
    """A collector for `module=gastracker&action=gasoracle` on one chain (ETH or BSC)."""

    @collector
    def collect(payload: Any, *, provider: str, category: str) -> list[DataPoint]:
        result = parse.obj(_etherscan_result(payload), "$.result")

        def gwei(name: str) -> Decimal:
            return parse.bounded(
                parse.at(result, name, where="$.result"),
                f"$.result.{name}",
                high=parse.MAX_GAS_GWEI,
            )

        safe, propose, fast = gwei("SafeGasPrice"), gwei("ProposeGasPrice"), gwei("FastGasPrice")
        block = parse.integer(
            parse.at(result, "LastBlock", where="$.result"),
            "$.result.LastBlock",
            low=1,
            high=parse.MAX_BLOCK,
        )
        values: dict[str, Any] = {
            "unit": "gwei",
            "safe": parse.plain(safe),
            "propose": parse.plain(propose),
            "fast": parse.plain(fast),
            "last_block": block,
        }
        if result.get("suggestBaseFee") is not None:
            base = parse.bounded(
                result["suggestBaseFee"], "$.result.suggestBaseFee", high=parse.MAX_GAS_GWEI
            )
            values["base_fee"] = parse.plain(base)
        ratios = _gas_ratios(result.get("gasUsedRatio"), "$.result.gasUsedRatio")
        if ratios:
            values["gas_used_ratio"] = ratios
        # No data timestamp: the oracle has none, and the fetch time would be pretending.
        return [
            DataPoint(provider, category, f"{chain}-gas", value=propose, values=values),
            DataPoint(provider, category, f"{chain}-last_block", value=Decimal(block)),
        ]

    collect.__name__ = collect.__qualname__ = f"{chain.lower()}_gas_oracle"
    return collect


def native_price(symbol: str) -> Callable[..., list[DataPoint]]:
    """A collector for `module=stats&action=ethprice` (or `bnbprice`, which keeps
    Etherscan's `ethusd` field names): `{"ethbtc": "0.0368", "ethbtc_timestamp":
    "1759139509", "ethusd": "4129.30", "ethusd_timestamp": "1759139509"}`."""
    own = symbol.lower()

    @collector
    def collect(payload: Any, *, provider: str, category: str) -> list[DataPoint]:
        result = parse.obj(_etherscan_result(payload), "$.result")
        prefix = "eth" if "ethusd" in result else own
        usd = parse.price(
            parse.at(result, f"{prefix}usd", where="$.result"), f"$.result.{prefix}usd"
        )
        stamp = result.get(f"{prefix}usd_timestamp")
        values: dict[str, Any] = {"quote": "USD"}
        if result.get(f"{prefix}btc") is not None:
            in_btc = parse.bounded(
                result[f"{prefix}btc"], f"$.result.{prefix}btc", high=1000, low_inclusive=False
            )
            values["btc"] = parse.plain(in_btc)
        return [
            DataPoint(
                provider,
                category,
                f"{symbol}-USD",
                value=usd,
                values=values,
                data_timestamp=None
                if stamp is None
                else parse.unix_time(stamp, f"$.result.{prefix}usd_timestamp"),
            )
        ]

    collect.__name__ = collect.__qualname__ = f"{own}_price"
    return collect


eth_gas_oracle = gas_oracle("ETH")
bsc_gas_oracle = gas_oracle("BSC")
eth_price = native_price("ETH")
bnb_price = native_price("BNB")


@collector
def eth_supply(payload: Any, *, provider: str, category: str) -> list[DataPoint]:
    """`module=stats&action=ethsupply`: `result` is the supply in wei, as a string of digits
    (`"122373866217800000000000000"`); the value is in ETH, exact."""
    wei = parse.integer(_etherscan_result(payload), "$.result", high=parse.MAX_SUPPLY_UNITS)
    ether = Decimal(wei).scaleb(_WEI_PER_ETH_EXPONENT)
    return [
        DataPoint(provider, category, "ETH-supply", value=ether, values={"wei": str(wei)}),
    ]


@collector
def tronscan_latest_block(payload: Any, *, provider: str, category: str) -> list[DataPoint]:
    """`/api/block?sort=-number&limit=1`: `{"data": [{"number": 66000123, "hash": "…",
    "timestamp": 1714568400000, "nrOfTrx": 312, …}], "total": …}`; time in ms."""
    body = parse.obj(payload, "$")
    blocks = parse.array(parse.at(body, "data"), "$.data")
    if not blocks:
        raise CollectorError("$.data is empty: no block in the payload")
    newest: tuple[int, int] | None = None
    for index, entry in enumerate(blocks[:200]):
        where = f"$.data[{index}]"
        number = parse.integer(
            parse.at(entry, "number", where=where), f"{where}.number", low=1, high=parse.MAX_BLOCK
        )
        if newest is None or number > newest[0]:
            newest = (number, index)
    assert newest is not None
    number, index = newest
    where = f"$.data[{index}]"
    block = blocks[index]
    values: dict[str, Any] = {}
    if isinstance(block.get("hash"), str):
        values["hash"] = parse.text(block["hash"], f"{where}.hash", max_chars=128)
    if block.get("nrOfTrx") is not None:
        values["transactions"] = parse.integer(
            block["nrOfTrx"], f"{where}.nrOfTrx", high=10_000_000
        )
    stamp = block.get("timestamp")
    return [
        DataPoint(
            provider,
            category,
            "TRX-last_block",
            value=Decimal(number),
            values=values,
            data_timestamp=None
            if stamp is None
            else parse.unix_time(stamp, f"{where}.timestamp", unit="ms"),
        )
    ]
