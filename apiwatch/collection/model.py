"""What a collection run works with: its configuration, the latest point per provider and
item, a schedule as it runs, and the small rules for naming what is stored."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from apiwatch.analysis.freshness import DEFAULT_TTL_S
from apiwatch.catalogue.schema import ProviderSpec
from apiwatch.domain import ProbeResult, SkipReason

DEFAULT_INTERVAL_S: dict[str, float] = {
    "market_data": 60.0,
    "blockchain_explorers": 300.0,
    "news": 600.0,
    "sentiment": 900.0,
    "onchain": 3600.0,
}
# The item whose moves drive adaptive polling of market data.
ADAPTIVE_ITEM = "BTC-USD"
# News freshness is judged on the newest post of a run, under this item.
NEWS_LATEST = "news:latest"
_SKIP_WORD = re.compile(r"[a-z_]+")


@dataclass(frozen=True)
class CollectionConfig:
    ttl_s: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_TTL_S))
    divergence_pct: Decimal = Decimal("1")
    tolerance_max_s: float = 5.0
    tolerance_fraction: float = 0.10
    adaptive_categories: frozenset[str] = frozenset()
    adaptive_move_pct: float = 1.0
    adaptive_lookback_s: float = 600.0
    adaptive_floor_s: float = 15.0


@dataclass
class Point:
    """The latest value of one item from one provider."""

    provider: str
    category: str
    item: str
    value: Decimal | None
    text: str | None
    values: dict[str, Any] | None
    data_timestamp: datetime | None
    fetched_at: datetime

    def as_row(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "category": self.category,
            "item": self.item,
            "value": self.value,
            "text": self.text,
            "values": self.values,
            "data_timestamp": self.data_timestamp,
            "fetched_at": self.fetched_at,
        }


@dataclass
class ScheduleState:
    """A schedule as it runs: the configured interval and, under adaptive polling, the
    interval in effect now."""

    schedule_id: int
    provider: str
    category: str
    interval_s: float
    enabled: bool
    effective_interval_s: float
    adaptive_reason: str = ""

    @property
    def job_name(self) -> str:
        return f"collect:{self.provider}"


# Longer items are stored under a digest: PostgreSQL cannot index a btree row over 2,704
# bytes, and a url of 1,000 CJK characters is 3,000.
MAX_ITEM_BYTES = 512


def storage_item(item: str) -> str:
    """The item as stored and de-duplicated: itself, or `news:sha256:<hex>` when too long."""
    if len(item.encode("utf-8")) <= MAX_ITEM_BYTES:
        return item
    prefix = item.split(":", 1)[0]
    return f"{prefix}:sha256:{hashlib.sha256(item.encode('utf-8')).hexdigest()}"


def skip_reason(result: ProbeResult) -> str:
    """`rate_limit_budget (minute window full) until …` → `rate_limit_budget`."""
    match = _SKIP_WORD.match(result.reason or "")
    word = match.group(0) if match else ""
    return word if word in {reason.value for reason in SkipReason} else (word or "skipped")


def data_endpoints(spec: ProviderSpec) -> list[str]:
    return [name for name, endpoint in spec.endpoints.items() if endpoint.collector]
