"""Upstream garbage ends as CollectorError, never as any other exception, and never quotes
the payload: hostile top-level values, and every node of every real simulator payload
replaced by hostile values or removed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from apiwatch.collectors.base import CollectorError, DataPoint
from apiwatch.collectors.registry import COLLECTORS, get_collector

from .conftest import CATALOGUE, SECRET, Fetch

LONG = "9" * 100_000
HOSTILE: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    -0.0,
    1e308,
    float("nan"),
    float("inf"),
    float("-inf"),
    10**100,
    "",
    "abc",
    "NaN",
    "Infinity",
    "-5",
    "1e999",
    "1_000",
    "0x10",
    "\uff11\uff12\uff13",  # fullwidth digits, which Decimal() would accept
    LONG,
    SECRET,
    f"https://evil.example/?auth_token={SECRET}",
    [],
    {},
    [[[]]],
    {"a": {"b": {}}},
    [SECRET],
]
DATA_ENDPOINTS = [
    (spec.id, name, endpoint.collector or "")
    for spec in CATALOGUE.providers.values()
    for name, endpoint in spec.endpoints.items()
    if endpoint.collector
]
_DELETE = object()


def deep(levels: int) -> Any:
    node: Any = []
    for _ in range(levels):
        node = [node]
    return node


def check_contract(name: str, payload: Any) -> list[DataPoint] | CollectorError:
    """Call the collector; it returns sane points or raises CollectorError, nothing else."""
    try:
        points = get_collector(name)(payload, provider="p", category="market_data")
    except CollectorError as error:
        message = str(error)
        assert SECRET not in message and LONG[:50] not in message, message
        assert len(message) < 400, message
        return error
    assert isinstance(points, list)
    for point in points:
        assert isinstance(point, DataPoint)
        assert 0 < len(point.item) <= 1024
        if point.value is not None:
            assert isinstance(point.value, Decimal) and point.value.is_finite()
        # Storable as JSON: no Decimal, no datetime, no float NaN sneaking in.
        json.dumps(point.values, allow_nan=False)
    return points


@pytest.mark.parametrize("name", sorted(COLLECTORS))
@pytest.mark.parametrize("garbage", HOSTILE, ids=lambda v: type(v).__name__)
def test_hostile_top_level_payload_is_a_collector_error(name: str, garbage: Any) -> None:
    assert isinstance(check_contract(name, garbage), CollectorError)


@pytest.mark.parametrize("name", sorted(COLLECTORS))
def test_absurdly_deep_nesting_is_a_collector_error(name: str) -> None:
    nested = deep(100_000)
    assert isinstance(check_contract(name, nested), CollectorError)
    assert isinstance(check_contract(name, {"data": nested, "results": nested}), CollectorError)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every node's path; only the first two items of each list (the rest repeat them)."""
    yield prefix
    if isinstance(node, dict):
        for key, child in node.items():
            yield from paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node[:2]):
            yield from paths(child, (*prefix, index))


def replaced(node: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A copy of `node` with the node at `path` replaced (or removed for `_DELETE`);
    only the containers along the path are copied."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    copy = dict(node) if isinstance(node, dict) else list(node)
    if not rest and value is _DELETE:
        del copy[head]
    else:
        copy[head] = replaced(node[head], rest, value)
    return copy


@pytest.mark.parametrize(("provider", "endpoint", "name"), DATA_ENDPOINTS)
async def test_every_node_of_a_real_payload_replaced_by_garbage_keeps_the_contract(
    payload: Fetch, provider: str, endpoint: str, name: str
) -> None:
    body = await payload(provider, endpoint)
    assert isinstance(check_contract(name, body), list)
    rejected = unforeseen = 0
    for path in paths(body):
        for value in [*HOSTILE, _DELETE] if path else HOSTILE:
            outcome = check_contract(name, replaced(body, path, value))
            if isinstance(outcome, CollectorError):
                rejected += 1
                # The precise readers should have named the problem; the generic net
                # in @collector is for shapes nobody foresaw.
                unforeseen += "unusable payload" in str(outcome)
    assert rejected > 0
    assert unforeseen == 0


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("market.coingecko_simple_price", {"bitcoin": {"usd": -67000.5}}),
        ("market.coingecko_simple_price", {"bitcoin": {"usd": 0}}),
        ("market.coingecko_simple_price", {"bitcoin": {"usd": 1e13}}),
        ("market.coingecko_simple_price", {"bitcoin": {"usd": 1.0, "usd_24h_change": -150}}),
        ("market.binance_ticker_24hr", [{"symbol": "BTCUSDT", "lastPrice": "-1.00000000"}]),
        ("market.binance_ticker_24hr", [{"symbol": "BTCUSDT", "lastPrice": "NaN"}]),
        ("market.binance_ticker_24hr", [{"symbol": "BTCUSDT", "lastPrice": "Infinity"}]),
        ("market.binance_ticker_24hr", [{"symbol": "BTCUSDT", "lastPrice": "1e999"}]),
        (
            "market.binance_ticker_24hr",
            [{"symbol": "BTCUSDT", "lastPrice": "1.0", "closeTime": 1_714_568_400}],  # s, not ms
        ),
        ("sentiment.fear_greed", {"data": [{"value": "101", "timestamp": "1713628800"}]}),
    ],
)
def test_impossible_numbers_are_rejected_with_the_path_that_holds_them(
    name: str, body: Any
) -> None:
    with pytest.raises(CollectorError) as caught:
        get_collector(name)(body, provider="p", category="c")
    assert "$" in str(caught.value)


def test_a_secret_in_a_price_field_never_reaches_the_error_message() -> None:
    body = {"bitcoin": {"usd": SECRET}}
    with pytest.raises(CollectorError) as caught:
        get_collector("market.coingecko_simple_price")(body, provider="p", category="c")
    assert SECRET not in str(caught.value)
    assert "$.bitcoin.usd" in str(caught.value)
