"""Sentiment collector: the Alternative.me Crypto Fear & Greed index.

Item `fear_greed`: value 0-100, text the provider's classification ("Extreme Fear" …
"Extreme Greed"), data timestamp the index's own (unix seconds as a string; the index
updates once a day, hence the 26 h TTL of this category).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from apiwatch.collectors import parse
from apiwatch.collectors.base import CollectorError, DataPoint, collector


@collector
def fear_greed(payload: Any, *, provider: str, category: str) -> list[DataPoint]:
    """`/fng/?limit=1`: `{"name": "Fear and Greed Index", "data": [{"value": "54",
    "value_classification": "Neutral", "timestamp": "1713628800", "time_until_update":
    "3600"}], "metadata": {"error": null}}`. With a longer `limit`, the newest entry wins."""
    body = parse.obj(payload, "$")
    if parse.optional(body, "metadata", "error") is not None:
        raise CollectorError("$.metadata.error is set: the payload is an error")
    entries = parse.array(parse.at(body, "data"), "$.data")
    if not entries:
        raise CollectorError("$.data is empty: no index value in the payload")
    newest = None
    for index, entry in enumerate(entries[:400]):
        where = f"$.data[{index}]"
        stamp = parse.unix_time(parse.at(entry, "timestamp", where=where), f"{where}.timestamp")
        if newest is None or stamp > newest[0]:
            newest = (stamp, index)
    assert newest is not None
    stamp, index = newest
    where = f"$.data[{index}]"
    entry = entries[index]
    value = parse.integer(parse.at(entry, "value", where=where), f"{where}.value", high=100)
    label = parse.text(
        parse.at(entry, "value_classification", where=where),
        f"{where}.value_classification",
        max_chars=40,
    )
    values: dict[str, Any] = {"classification": label}
    if entry.get("time_until_update") is not None:
        values["time_until_update_s"] = parse.integer(
            entry["time_until_update"], f"{where}.time_until_update", high=10 * 86_400
        )
    return [
        DataPoint(
            provider,
            category,
            "fear_greed",
            value=Decimal(value),
            text=label,
            values=values,
            data_timestamp=stamp,
        )
    ]
