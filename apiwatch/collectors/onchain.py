"""On-chain collectors for the placeholder providers: The Graph, Blockchair and Glassnode.

The three are in the default catalogue but disabled (`enabled: false`), because each needs
an account or a choice (which subgraph, which metric). Their data endpoints and these
collectors are real, so enabling one is configuration only:

1. Create a directory for your own catalogue files and point apiwatch at it:
   `APIWATCH_CATALOGUE_DIR=/etc/apiwatch/catalogue`.
2. Copy the provider's file from `apiwatch/catalogue/providers/` (e.g. `glassnode.yaml`)
   into it, keep its `id`, and set `enabled: true`. A user file replaces ours by id as a
   whole, so keep every other field you want.
3. Put the key in the environment variable its `auth.keys` names: `GLASSNODE_KEY`,
   `THEGRAPH_KEY` (Blockchair works keyless at a low rate; `BLOCKCHAIR_KEY` raises it).
   For The Graph, also replace the subgraph id in `path` with yours.
4. Restart; the provider appears with category `onchain`. Its collection schedule is
   edited like any other (`PUT /api/schedule/{id}`).

Items: `subgraph-last_block` (the chain block a subgraph has indexed up to; its lag behind
the chain is what The Graph users watch), `BTC-last_block` and `BTC-mempool_tx`
(Blockchair), `BTC-price_close` (Glassnode's BTC close price per interval, 10 minutes
in the catalogue).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from apiwatch.collectors import parse
from apiwatch.collectors.base import CollectorError, DataPoint, collector


@collector
def thegraph_meta(payload: Any, *, provider: str, category: str) -> list[DataPoint]:
    """A subgraph's `_meta`: `{"data": {"_meta": {"block": {"number": 21000000, "hash":
    "0x…", "timestamp": 1729800000}, "deployment": "Qm…", "hasIndexingErrors": false}}}`.
    GraphQL reports failures in `errors`, often with HTTP 200; `block.timestamp` is null on
    older indexers, and the point then has no data timestamp."""
    body = parse.obj(payload, "$")
    if body.get("errors"):
        raise CollectorError("$.errors is set: the GraphQL query failed")
    meta = parse.obj(parse.at(body, "data", "_meta"), "$.data._meta")
    block = parse.obj(parse.at(meta, "block", where="$.data._meta"), "$.data._meta.block")
    where = "$.data._meta.block"
    number = parse.integer(
        parse.at(block, "number", where=where), f"{where}.number", low=1, high=parse.MAX_BLOCK
    )
    values: dict[str, Any] = {}
    if isinstance(block.get("hash"), str):
        values["hash"] = parse.text(block["hash"], f"{where}.hash", max_chars=80)
    if isinstance(meta.get("deployment"), str):
        values["deployment"] = parse.text(
            meta["deployment"], "$.data._meta.deployment", max_chars=80
        )
    if isinstance(meta.get("hasIndexingErrors"), bool):
        values["has_indexing_errors"] = meta["hasIndexingErrors"]
    stamp = block.get("timestamp")
    return [
        DataPoint(
            provider,
            category,
            "subgraph-last_block",
            value=Decimal(number),
            values=values,
            data_timestamp=None if stamp is None else parse.unix_time(stamp, f"{where}.timestamp"),
        )
    ]


@collector
def blockchair_bitcoin_stats(payload: Any, *, provider: str, category: str) -> list[DataPoint]:
    """`/bitcoin/stats`: `{"data": {"best_block_height": 867000, "best_block_hash": "…",
    "best_block_time": "2024-05-01 12:00:00", "mempool_transactions": 41250, …},
    "context": {"code": 200, …}}`. Times are UTC without a zone."""
    body = parse.obj(payload, "$")
    code = parse.optional(body, "context", "code")
    if code not in (None, 200):
        raise CollectorError("$.context.code is not 200: the payload is an error")
    data = parse.obj(parse.at(body, "data"), "$.data")
    height = parse.integer(
        parse.at(data, "best_block_height", where="$.data"),
        "$.data.best_block_height",
        low=1,
        high=parse.MAX_BLOCK,
    )
    values: dict[str, Any] = {}
    if isinstance(data.get("best_block_hash"), str):
        values["hash"] = parse.text(data["best_block_hash"], "$.data.best_block_hash", max_chars=80)
    stamp = data.get("best_block_time")
    points = [
        DataPoint(
            provider,
            category,
            "BTC-last_block",
            value=Decimal(height),
            values=values,
            data_timestamp=None
            if stamp is None
            else parse.iso_time(stamp, "$.data.best_block_time"),
        )
    ]
    if data.get("mempool_transactions") is not None:
        mempool = parse.integer(
            data["mempool_transactions"], "$.data.mempool_transactions", high=10**9
        )
        points.append(
            DataPoint(provider, category, "BTC-mempool_tx", value=Decimal(mempool)),
        )
    return points


def glassnode_metric(
    item: str, reader: Callable[[Any, str], Decimal]
) -> Callable[..., list[DataPoint]]:
    """A collector for one Glassnode metric series: `[{"t": 1714521600, "v": 67012.3}, …]`,
    oldest first, each `t` the start of its interval (unix s). The newest point wins and is
    dated by its `t`, as the payload says; at daily resolution that makes a value up to a
    day old by construction, hence the catalogue's 10-minute resolution."""

    @collector
    def collect(payload: Any, *, provider: str, category: str) -> list[DataPoint]:
        series = parse.array(payload, "$")
        if not series:
            raise CollectorError("$ is an empty series")
        where = f"$[{len(series) - 1}]"
        newest = parse.obj(series[-1], where)
        stamp = parse.unix_time(parse.at(newest, "t", where=where), f"{where}.t")
        value = reader(parse.at(newest, "v", where=where), f"{where}.v")
        return [DataPoint(provider, category, item, value=value, data_timestamp=stamp)]

    collect.__name__ = collect.__qualname__ = f"glassnode_{item.replace('-', '_').lower()}"
    return collect


glassnode_btc_price_close = glassnode_metric("BTC-price_close", parse.price)
