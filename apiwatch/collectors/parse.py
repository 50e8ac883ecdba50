"""Strict readers for provider payloads: walk a path, read an exact number, read a time.

Each reader either returns a checked value or raises `CollectorError` naming the path
(`$.RAW.BTC.USD.PRICE`) and what was wrong with it. Values themselves are quoted only when
they are numbers we parsed; text from a payload never reaches a message (see base.py).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from apiwatch.collectors.base import CollectorError

# A plain decimal as providers write it: "4129.30", "-0.72", ".5", "1e-7". Decimal() alone
# would also take "NaN", "Infinity" and "1_000", none of which is a price.
# ASCII digits only: `\d` and Decimal() would also read fullwidth and other
# scripts' digits (U+FF11…).
_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?")
# Longer than any real number; stops a megabyte of digits from being parsed at all.
MAX_NUMBER_CHARS = 64
MAX_TEXT_CHARS = 1000
MAX_URL_CHARS = 1000  # `news:<url>` must fit the 1024-character item column

# Bounds that no real value reaches; beyond them the payload is broken, not the market.
MAX_PRICE_USD = Decimal("1e12")  # per coin; BTC is ~1e5
MAX_AMOUNT_USD = Decimal("1e16")  # volumes and market caps; the whole market is ~1e13
MAX_CHANGE_PCT = Decimal("100000")
MAX_GAS_GWEI = Decimal("1000000")
MAX_BLOCK = 10**12
MAX_SUPPLY_UNITS = 10**40  # in the chain's smallest unit (wei): ETH is ~1.2e26

# A data time outside these years is a unit mix-up (ms read as s) or a placeholder (0).
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_LATEST = datetime(2200, 1, 1, tzinfo=UTC)
_EARLIEST_S = Decimal(int(_EARLIEST.timestamp()))
_LATEST_S = Decimal(int(_LATEST.timestamp()))

_MISSING = object()


def at(document: Any, *keys: str | int, where: str = "$") -> Any:
    """`document[k1][k2]…`, with a precise error when a step is missing or the wrong type."""
    node = document
    path = where
    for key in keys:
        if isinstance(key, int):
            if not isinstance(node, list):
                raise CollectorError(f"{path} should be a list, got {kind(node)}")
            if not -len(node) <= key < len(node):
                raise CollectorError(f"{path}[{key}] is missing (list of {len(node)})")
            node = node[key]
            path = f"{path}[{key}]"
        else:
            if not isinstance(node, dict):
                raise CollectorError(f"{path} should be an object, got {kind(node)}")
            path = f"{path}.{key}"
            node = node.get(key, _MISSING)
            if node is _MISSING:
                raise CollectorError(f"{path} is missing")
    return node


def optional(document: Any, *keys: str | int) -> Any:
    """Like `at`, but None when any step is absent or of the wrong type."""
    try:
        return at(document, *keys)
    except CollectorError:
        return None


def kind(value: Any) -> str:
    """A payload value's JSON type, for messages (never the value itself)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float | Decimal):
        return "number"
    if isinstance(value, str):
        return f"a string of {len(value)} characters"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CollectorError(f"{where} should be an object, got {kind(value)}")
    return value


def array(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise CollectorError(f"{where} should be a list, got {kind(value)}")
    return value


def decimal(value: Any, where: str) -> Decimal:
    """An exact Decimal from a JSON number or a numeric string; finite, or CollectorError."""
    if isinstance(value, bool):  # bool is an int to Python, not a number to JSON
        raise CollectorError(f"{where} should be a number, got boolean")
    if isinstance(value, int):
        if abs(value) > 10**60:
            raise CollectorError(f"{where} is an absurdly large number")
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CollectorError(f"{where} is not a finite number ({value})")
        # repr is the shortest text that reads back as this float: what the provider wrote.
        return Decimal(repr(value))
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise CollectorError(f"{where} is not a finite number")
        return value
    if isinstance(value, str):
        text = value.strip()
        if len(text) > MAX_NUMBER_CHARS or not _DECIMAL_TEXT.fullmatch(text):
            raise CollectorError(f"{where} should be a number, got {kind(value)} that is not one")
        try:
            return Decimal(text)
        except InvalidOperation:  # unreachable for matching text; kept as a guarantee
            raise CollectorError(f"{where} should be a number") from None
    raise CollectorError(f"{where} should be a number, got {kind(value)}")


def bounded(
    value: Any,
    where: str,
    *,
    low: Decimal | int = 0,
    high: Decimal | int,
    low_inclusive: bool = True,
) -> Decimal:
    """A Decimal within [low, high] (or (low, high] when `low_inclusive` is False)."""
    number = decimal(value, where)
    too_low = number < low if low_inclusive else number <= low
    if too_low:
        relation = "below" if low_inclusive else "at or below"
        raise CollectorError(f"{where} = {_show(number)} is {relation} {low}")
    if number > high:
        raise CollectorError(f"{where} = {_show(number)} is absurd (above {high})")
    return number


def price(value: Any, where: str) -> Decimal:
    """A price in USD: positive and below any price a coin has had."""
    return bounded(value, where, low=0, high=MAX_PRICE_USD, low_inclusive=False)


def amount(value: Any, where: str) -> Decimal:
    """A non-negative USD amount such as a 24 h volume or a market cap."""
    return bounded(value, where, low=0, high=MAX_AMOUNT_USD)


def change_pct(value: Any, where: str) -> Decimal:
    """A 24 h change in percent: a price cannot fall more than 100 %."""
    return bounded(value, where, low=-100, high=MAX_CHANGE_PCT)


def integer(value: Any, where: str, *, low: int = 0, high: int) -> int:
    """A whole number in [low, high], from a JSON integer or a string of digits."""
    number = bounded(value, where, low=low, high=high)
    if number != number.to_integral_value():
        raise CollectorError(f"{where} = {_show(number)} should be a whole number")
    return int(number)


def text(value: Any, where: str, *, max_chars: int = MAX_TEXT_CHARS) -> str:
    """A string, whitespace-trimmed and cut to `max_chars` (titles are display text)."""
    if not isinstance(value, str):
        raise CollectorError(f"{where} should be a string, got {kind(value)}")
    return value.strip()[:max_chars]


def url(value: Any, where: str) -> str:
    """An absolute http(s) URL short enough to be an item name."""
    if not isinstance(value, str):
        raise CollectorError(f"{where} should be a URL string, got {kind(value)}")
    link = value.strip()
    if len(link) > MAX_URL_CHARS:
        raise CollectorError(f"{where} is a URL longer than {MAX_URL_CHARS} characters")
    if not re.fullmatch(r"https?://[^\s/?#]+[^\s]*", link, flags=re.IGNORECASE):
        raise CollectorError(f"{where} should be an http(s) URL, got {kind(value)}")
    return link


def unix_time(value: Any, where: str, *, unit: str = "s") -> datetime:
    """A UTC datetime from unix seconds or milliseconds, as a number or a string."""
    number = decimal(value, where)
    seconds = number / 1000 if unit == "ms" else number
    # Checked before conversion so a wild value gives our message, not an OverflowError.
    if not _EARLIEST_S <= seconds < _LATEST_S:
        raise CollectorError(
            f"{where} = {_show(number)} is not a plausible unix time in {unit} "
            f"(expected years 2000-2199)"
        )
    return datetime.fromtimestamp(float(seconds), tz=UTC)


def iso_time(value: Any, where: str) -> datetime:
    """A UTC datetime from ISO 8601 (`Z`, an offset, or none meaning UTC)."""
    if not isinstance(value, str) or len(value) > 64:
        raise CollectorError(f"{where} should be an ISO 8601 time, got {kind(value)}")
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CollectorError(f"{where} is not an ISO 8601 time") from None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if not _EARLIEST <= moment < _LATEST:
        raise CollectorError(f"{where} is not a plausible time (expected years 2000-2199)")
    return moment


def plain(number: Decimal) -> str:
    """A Decimal as JSON-safe text without exponent: `Decimal("1E+2")` → `"100"`."""
    return format(number, "f")


def _show(number: Decimal) -> str:
    shown = plain(number) if abs(number.adjusted()) < 30 else f"{number:.6e}"
    return shown if len(shown) <= 40 else f"{number:.6e}"
