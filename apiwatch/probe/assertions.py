"""Payload checks: JSONPath look-ups, the catalogue's `expect` checks, data timestamps.

JSONPath expressions are compiled once and cached; a probe of a hot endpoint should not pay
for parsing the same expression every time.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from jsonpath_ng import JSONPath
from jsonpath_ng.ext import parse as _parse_jsonpath

from apiwatch.catalogue.schema import Check, Signal, TimestampSpec

_MISSING = object()

_TYPES: dict[str, Any] = {
    "string": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}


@lru_cache(maxsize=1024)
def compile_path(path: str) -> JSONPath:
    return _parse_jsonpath(path)


def find_all(document: Any, path: str) -> list[Any]:
    return [match.value for match in compile_path(path).find(document)]


def find_one(document: Any, path: str) -> Any:
    """The first value at `path`, or `_MISSING` if there is none."""
    values = find_all(document, path)
    return values[0] if values else _MISSING


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_failure(
    check: Check, *, status: int, document: Any, body_is_json: bool, latency_ms: float
) -> str | None:
    """None when the check holds, else a sentence saying what failed."""
    if check.status is not None:
        allowed = check.status if isinstance(check.status, list) else [check.status]
        return None if status in allowed else f"expected HTTP {allowed}, got {status}"
    if check.max_latency_ms is not None:
        return None  # latency checks decide `slow`, not failure; see engine
    if check.body is not None:
        if check.body == "json" and not body_is_json:
            return "expected a JSON body"
        return None
    assert check.json_path is not None
    if not body_is_json:
        return f"{check.json_path}: body is not JSON"
    value = find_one(document, check.json_path)
    if value is _MISSING:
        # "should not equal X" holds for an absent field; every other check needs the field.
        only_not_equals = (
            "not_equals" in check.model_fields_set
            and check.exists is None
            and (check.model_fields_set <= {"json_path", "not_equals"})
        )
        if check.exists is False or only_not_equals:
            return None
        return f"{check.json_path} is missing"
    if check.exists is False:
        return f"{check.json_path} should be absent"
    if check.type is not None and not _TYPES[check.type](value):
        return f"{check.json_path} should be {check.type}, got {_short(value)}"
    if "equals" in check.model_fields_set and value != check.equals:
        return f"{check.json_path} should equal {check.equals!r}, got {_short(value)}"
    if "not_equals" in check.model_fields_set and value == check.not_equals:
        return f"{check.json_path} should not equal {check.not_equals!r}"
    if check.matches is not None and not re.search(check.matches, _as_text(value)):
        return f"{check.json_path} should match /{check.matches}/, got {_short(value)}"
    if check.min_items is not None and (
        not isinstance(value, list | dict | str) or len(value) < check.min_items
    ):
        return f"{check.json_path} should have at least {check.min_items} items"
    return None


def signal_matches(signal: Signal, *, status: int, document: Any, text: str) -> bool:
    if signal.status is not None:
        allowed = signal.status if isinstance(signal.status, list) else [signal.status]
        if status not in allowed:
            return False
    if signal.body_matches is not None:
        return re.search(signal.body_matches, text) is not None
    assert signal.json_path is not None
    if document is _MISSING:
        return False
    for value in find_all(document, signal.json_path):
        if "equals" in signal.model_fields_set and value == signal.equals:
            return True
        if signal.matches is not None and re.search(signal.matches, _as_text(value)):
            return True
    return False


def extract_timestamp(spec: TimestampSpec, document: Any) -> datetime | None:
    """The data's own time from the payload; None when absent or unreadable."""
    stamps = [
        stamp
        for value in find_all(document, spec.json_path)
        if (stamp := _to_datetime(value, spec.unit)) is not None
    ]
    if not stamps:
        return None
    return stamps[0] if spec.pick == "first" else max(stamps)


def _to_datetime(value: Any, unit: str) -> datetime | None:
    try:
        if unit == "iso8601":
            if not isinstance(value, str):
                return None
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return None
        number = float(value)
        return datetime.fromtimestamp(number / 1000 if unit == "ms" else number, tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None
