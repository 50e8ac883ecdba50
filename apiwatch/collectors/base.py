"""What every collector shares: the data point it returns, the error it raises, and the
calling convention.

A collector turns one provider payload (the parsed JSON body of a successful probe, as in
`ProbeResult.payload`) into normalized data points:

    points = collect(payload, provider="coingecko", category="market_data")

It is a plain function, pure and synchronous: no I/O, no clock. It returns a list of
`DataPoint` (possibly empty, e.g. a news feed with no posts) or raises `CollectorError`
when the payload cannot be used. Whatever an upstream sends — wrong types, missing keys,
odd nesting, NaN, a negative price — ends as `CollectorError` and never as any other
exception: `@collector` converts what the parsing helpers did not foresee, so one bad
upstream cannot take down a collection run.

Numbers are `Decimal`, exact: strings are parsed as written, JSON numbers that arrive as
Python floats via `Decimal(repr(x))` (the shortest text that round-trips, i.e. what the
provider sent), never through float arithmetic. Inside `values` (stored as JSON) numbers
travel as strings for the same reason.

Adding a collector is one function in the category's module plus one line in
`registry.py`; the catalogue endpoint names it with `collector: <module>.<name>`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol


@dataclass(frozen=True)
class DataPoint:
    """One value of one item from one provider.

    `item` names what was measured: `BTC-USD`, `ETH-gas`, `ETH-supply`, `TRX-last_block`,
    `fear_greed`, `news:<url>`. A number goes in `value`, a word or headline in `text`,
    details in `values` (JSON-safe: strings, ints, bools, None, lists and dicts of them).
    `data_timestamp` is the data's own time from the payload, None when the payload has
    none (never the time we fetched it).
    """

    provider: str
    category: str
    item: str
    value: Decimal | None = None
    text: str | None = None
    values: dict[str, Any] | None = None
    data_timestamp: datetime | None = None


class CollectorError(Exception):
    """A payload we cannot use. The message says what was wrong and where (a path such as
    `$.bitcoin.usd`), never the offending text itself: upstreams echo requests, keys
    included, so payload strings stay out of messages, logs and the database."""


class Collector(Protocol):
    def __call__(self, payload: Any, *, provider: str, category: str) -> list[DataPoint]: ...


def collector(
    func: Callable[..., list[DataPoint]],
) -> Callable[..., list[DataPoint]]:
    """Make `func` honour the contract: anything but `CollectorError` becomes one.

    The parsing helpers raise precise errors for everything they check; this is the net
    for what they did not foresee (a shape nobody imagined, a recursion limit), and it
    names only the exception's type, not its text, which may quote the payload.
    """

    @functools.wraps(func)
    def guarded(payload: Any, *, provider: str, category: str) -> list[DataPoint]:
        try:
            return func(payload, provider=provider, category=category)
        except CollectorError:
            raise
        except Exception as exc:  # the contract: garbage in, CollectorError out
            # Read at call time: factories rename the collectors they make.
            name = guarded.__name__
            raise CollectorError(f"{name}: unusable payload ({type(exc).__name__})") from None

    return guarded
