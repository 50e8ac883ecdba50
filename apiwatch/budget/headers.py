"""What providers say about our usage in their response headers, as budget reports.

- Binance: `X-MBX-USED-WEIGHT-(n)(S|M|H|D)`, the weight this IP has used in the current
  window (`-1M` on every response). Only one-unit intervals map onto our windows.
- Bybit: `X-Bapi-Limit` (the limit), `X-Bapi-Limit-Status` (remaining) and
  `X-Bapi-Limit-Reset-Timestamp` (ms), a per-second limit of the endpoint that answered
  (its endpoint tier, not the provider-wide one).
- Any provider: `Retry-After`, in seconds or as an HTTP date, means "send nothing before".

A header that cannot be parsed is ignored: a provider's odd header must never break a probe.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Literal

from apiwatch.budget.windows import to_datetime, to_unix

_BINANCE_WEIGHT = re.compile(r"^x-mbx-used-weight-(\d+)([smhd])$")
_BINANCE_LETTERS = {"s": "second", "m": "minute", "h": "hour", "d": "day"}


@dataclass(frozen=True, slots=True)
class UsageReport:
    """The provider's own figure for one window: `used` of `limit`, resetting at `reset_at`."""

    window: str
    used: int
    limit: int | None = None
    reset_at: datetime | None = None
    # Which budget tier the figure belongs to: the provider's ip tier, or the endpoint's.
    tier: Literal["ip", "endpoint"] = "ip"


@dataclass(frozen=True, slots=True)
class BlockReport:
    """The provider asked us to send nothing before `until`."""

    until: datetime


Report = UsageReport | BlockReport


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def _binance(headers: dict[str, str]) -> list[Report]:
    reports: list[Report] = []
    for name, value in headers.items():
        match = _BINANCE_WEIGHT.match(name)
        used = _int(value)
        if match is None or used is None or match.group(1) != "1":
            continue
        reports.append(UsageReport(window=_BINANCE_LETTERS[match.group(2)], used=used))
    # Older responses carry the bare header, which is the one-minute figure.
    bare = _int(headers.get("x-mbx-used-weight"))
    if bare is not None and not any(
        isinstance(r, UsageReport) and r.window == "minute" for r in reports
    ):
        reports.append(UsageReport(window="minute", used=bare))
    return reports


def _bybit(headers: dict[str, str]) -> list[Report]:
    limit = _int(headers.get("x-bapi-limit"))
    remaining = _int(headers.get("x-bapi-limit-status"))
    if limit is None or remaining is None:
        return []
    reset_ms = _int(headers.get("x-bapi-limit-reset-timestamp"))
    reset_at = to_datetime(reset_ms / 1000) if reset_ms is not None else None
    used = max(0, limit - remaining)
    return [
        UsageReport(window="second", used=used, limit=limit, reset_at=reset_at, tier="endpoint")
    ]


def _retry_after(headers: dict[str, str], now: float) -> list[Report]:
    value = headers.get("retry-after")
    if value is None:
        return []
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            until = to_unix(parsedate_to_datetime(value))
        except (TypeError, ValueError, IndexError):
            return []
    else:
        if not math.isfinite(seconds):
            return []
        until = now + seconds
    if until <= now:
        return []
    return [BlockReport(until=to_datetime(until))]


def usage_from_headers(headers: Mapping[str, str], *, now: float) -> list[Report]:
    """Every report the response headers carry; `now` (unix seconds) anchors `Retry-After`."""
    lowered = {name.lower(): value for name, value in headers.items()}
    return [*_binance(lowered), *_bybit(lowered), *_retry_after(lowered, now)]
