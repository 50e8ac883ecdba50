"""Data collection: fetch a provider's data endpoints on its category's schedule, turn the
payloads into data points, judge their freshness and the consensus across providers, and
record whether each planned run started on time.

Collections go through the same probe engine as health checks, so they share the provider's
budget, breaker and key pool, and every request is a stored attempt. The latest point per
provider and item is kept in memory (restored from the database at start) because
freshness, consensus and the API read it on every run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import re
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import structlog

from apiwatch.analysis.compliance import judge_start, tolerance_s
from apiwatch.analysis.consensus import consensus
from apiwatch.analysis.freshness import DEFAULT_TTL_S, Freshness, judge
from apiwatch.catalogue.loader import Catalogue
from apiwatch.catalogue.schema import ProviderSpec
from apiwatch.collectors.base import CollectorError, DataPoint
from apiwatch.collectors.registry import get_collector
from apiwatch.domain import (
    DataDivergent,
    DataStale,
    IntervalChanged,
    Outcome,
    ProbeResult,
    SkipReason,
    Status,
    utcnow,
)
from apiwatch.probe.engine import ProbeEngine

log = structlog.get_logger("apiwatch.collection")

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


class Collection:
    def __init__(
        self,
        *,
        catalogue: Catalogue,
        engine: ProbeEngine,
        handle: Callable[[ProbeResult], object],
        record: Callable[[object], None],
        announce: Callable[[object], None],
        status_of: Callable[[str], Status],
        known_items: Callable[[list[str]], Awaitable[set[str]]],
        config: CollectionConfig | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._catalogue = catalogue
        self._engine = engine
        self._handle = handle
        self._record = record
        self._announce = announce
        self._status_of = status_of
        self._known_items = known_items
        self.config = config or CollectionConfig()
        self._clock = clock
        self.latest: dict[tuple[str, str], Point] = {}
        self.schedules: dict[str, ScheduleState] = {}  # by provider
        self._stale: set[tuple[str, str]] = set()
        self._divergent: set[tuple[str, str]] = set()
        self._history: deque[tuple[datetime, Decimal]] = deque()
        self._seen_news: set[str] = set()
        self._seen_order: deque[str] = deque()
        self.on_interval_change: Callable[[ScheduleState], None] = lambda state: None

    # -- state ------------------------------------------------------------------------------

    def restore(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Start from the latest stored point per provider and item."""
        for row in rows:
            point = Point(**{name: row[name] for name in Point.__dataclass_fields__})
            self.latest[(point.provider, point.item)] = point

    def ttl_for(self, category: str) -> float:
        return float(self.config.ttl_s.get(category, DEFAULT_TTL_S.get(category, 3600.0)))

    def freshness(self, *, now: datetime | None = None) -> list[dict[str, Any]]:
        """Per provider and item: data time, age, TTL and status (GET /api/freshness)."""
        now = now or self._clock()
        out = []
        for (provider, item), point in sorted(self.latest.items()):
            if item.startswith("news:") and item != NEWS_LATEST:
                continue
            ttl = self.ttl_for(point.category)
            status = judge(point.data_timestamp, now=now, ttl_s=ttl)
            age = (
                None
                if point.data_timestamp is None
                else round((now - point.data_timestamp).total_seconds(), 1)
            )
            out.append(
                {
                    "provider": provider,
                    "category": point.category,
                    "item": item,
                    "data_time": point.data_timestamp,
                    "fetched_at": point.fetched_at,
                    "age_s": age,
                    "ttl_s": ttl,
                    "status": status.value,
                    "note": "the payload carries no timestamp"
                    if point.data_timestamp is None
                    else "",
                }
            )
        return out

    def consensus_view(self, *, now: datetime | None = None) -> dict[str, dict[str, Any]]:
        """Per numeric market item: the median across providers whose value is not stale,
        each provider's deviation, and who diverges."""
        now = now or self._clock()
        by_item: dict[str, dict[str, Decimal]] = {}
        for (provider, item), point in self.latest.items():
            if point.category != "market_data" or point.value is None:
                continue
            ttl = self.ttl_for(point.category)
            # Judge by when we fetched it as well: a provider that stopped answering must not
            # keep voting with its last price.
            if (now - point.fetched_at).total_seconds() > 2 * ttl:
                continue
            by_item.setdefault(item, {})[provider] = point.value
        out: dict[str, dict[str, Any]] = {}
        for item, prices in sorted(by_item.items()):
            result = consensus(prices, threshold_pct=self.config.divergence_pct, item=item)
            out[item] = {
                "median": result.median,
                "providers": {
                    provider: {
                        "value": prices[provider],
                        "deviation_pct": float(dev.deviation_pct),
                        "divergent": dev.divergent,
                    }
                    for provider, dev in result.providers.items()
                },
                "divergent": list(result.divergent),
                "threshold_pct": float(self.config.divergence_pct),
            }
        return out

    # -- one run ----------------------------------------------------------------------------

    async def collect(
        self, provider_id: str, *, planned_at: datetime | None = None
    ) -> dict[str, Any]:
        """Fetch every data endpoint of the provider once. With `planned_at` (a scheduled
        run) the run's compliance is recorded; a manual trigger records none."""
        spec = self._catalogue.providers[provider_id]
        category = spec.category.value
        started = self._clock()
        summary: dict[str, Any] = {
            "provider": provider_id,
            "category": category,
            "points": 0,
            "fetched": 0,
            "skipped": [],
            "errors": [],
        }
        state = self.schedules.get(provider_id)
        # A disabled schedule keeps its slots, each a planned run skipped as `disabled`, so
        # its compliance history says why nothing was collected; a manual trigger still runs.
        if not spec.enabled or (planned_at is not None and state is not None and not state.enabled):
            return self._finish(summary, planned_at, started, skipped="disabled")
        if self._status_of(provider_id) is Status.OFFLINE:
            return self._finish(summary, planned_at, started, skipped="provider_offline")
        points: list[DataPoint] = []
        try:
            await self._fetch(spec, summary, points)
        except Exception as error:  # a bug or a database error must not lose the run's row
            log.exception("collection_failed", provider=provider_id)
            summary["errors"].append({"endpoint": "*", "error": type(error).__name__})
        fetched_at = self._clock()
        try:
            summary["points"] = await self._store(points, fetched_at=fetched_at, category=category)
        except Exception as error:
            log.exception("collection_store_failed", provider=provider_id)
            summary["errors"].append({"endpoint": "*", "error": type(error).__name__})
        if summary["fetched"]:
            self._judge_freshness(provider_id, on_schedule=planned_at is not None, now=fetched_at)
            if category == "market_data":
                self._judge_consensus(now=fetched_at)
                self._adapt(now=fetched_at)
        skipped = None
        if not summary["fetched"] and summary["skipped"]:
            skipped = summary["skipped"][0]["reason"]
        return self._finish(summary, planned_at, started, skipped=skipped)

    async def _fetch(
        self, spec: ProviderSpec, summary: dict[str, Any], points: list[DataPoint]
    ) -> None:
        provider_id, category = spec.id, spec.category.value
        for name in data_endpoints(spec):
            results = await self._engine.probe(spec, name)
            if _per_second_full(results[-1]):
                # A run's endpoints go out back to back; a provider limited per second
                # (Etherscan: 3/s) takes the rest one second later rather than skipping them.
                await asyncio.sleep(1.05)
                results += await self._engine.probe(spec, name)
            for result in results:
                self._handle(result)
            final = results[-1]
            if final.outcome is Outcome.SKIPPED:
                summary["skipped"].append({"endpoint": name, "reason": skip_reason(final)})
                continue
            if not final.outcome.is_success:
                summary["errors"].append({"endpoint": name, "error": final.outcome.value})
                continue
            summary["fetched"] += 1
            collector = get_collector(spec.endpoints[name].collector or "")
            try:
                points.extend(collector(final.payload, provider=provider_id, category=category))
            except CollectorError as error:
                summary["errors"].append({"endpoint": name, "error": str(error)[:300]})
                log.warning(
                    "collector_rejected",
                    provider=provider_id,
                    endpoint=name,
                    error=str(error)[:300],
                )

    async def _store(self, points: list[DataPoint], *, fetched_at: datetime, category: str) -> int:
        points = [_stored(p) for p in points]
        news = [p for p in points if p.item.startswith("news:")]
        if news:
            known = await self._known_items([p.item for p in news])
            fresh_news = []
            for p in news:
                # Also remembered here: rows reach the database ~100 ms later, and two
                # providers collected at once can carry the same article.
                if p.item not in known and p.item not in self._seen_news:
                    self._remember_news(p.item)
                    fresh_news.append(p)
            points = [p for p in points if not p.item.startswith("news:")] + fresh_news
            newest = max((p.data_timestamp for p in news if p.data_timestamp), default=None)
            provider = news[0].provider
            self.latest[(provider, NEWS_LATEST)] = Point(
                provider,
                category,
                NEWS_LATEST,
                None,
                None,
                {"posts": len(news)},
                newest,
                fetched_at,
            )
        for p in points:
            point = Point(
                provider=p.provider,
                category=p.category,
                item=p.item,
                value=p.value,
                text=p.text,
                values=p.values,
                data_timestamp=p.data_timestamp,
                fetched_at=fetched_at,
            )
            self._record(("data_collections", point.as_row()))
            if not p.item.startswith("news:"):
                self.latest[(p.provider, p.item)] = point
        return len(points)

    def _remember_news(self, item: str) -> None:
        self._seen_news.add(item)
        self._seen_order.append(item)
        while len(self._seen_order) > 10_000:  # bounded: the database remembers the rest
            self._seen_news.discard(self._seen_order.popleft())

    def _finish(
        self,
        summary: dict[str, Any],
        planned_at: datetime | None,
        started: datetime,
        *,
        skipped: str | None,
    ) -> dict[str, Any]:
        summary["result"] = "skipped" if skipped else "done"
        if skipped:
            summary["reason"] = skipped
        if planned_at is None:
            return summary
        state = self.schedules.get(summary["provider"])
        interval = state.effective_interval_s if state else 60.0
        if skipped:
            result, lateness_ms, reason = "skipped", None, skipped
        else:
            tolerance = tolerance_s(
                interval,
                max_s=self.config.tolerance_max_s,
                fraction=self.config.tolerance_fraction,
            )
            result, lateness_ms = judge_start(
                planned_at, started, interval_s=interval, tolerance=tolerance
            )
            partial = [s["reason"] for s in summary["skipped"]]
            reason = f"partly skipped: {', '.join(sorted(set(partial)))}" if partial else ""
        self.record_compliance(
            provider=summary["provider"],
            category=summary["category"],
            planned_at=planned_at,
            started_at=None if skipped else started,
            lateness_ms=lateness_ms,
            result=result,
            reason=reason,
        )
        summary["compliance"] = result
        return summary

    def record_compliance(
        self,
        *,
        provider: str,
        category: str,
        planned_at: datetime,
        started_at: datetime | None,
        lateness_ms: float | None,
        result: str,
        reason: str,
    ) -> None:
        self._record(
            (
                "schedule_compliance",
                {
                    "provider": provider,
                    "category": category,
                    "planned_at": planned_at,
                    "started_at": started_at,
                    "lateness_ms": lateness_ms,
                    "result": result,
                    "reason": reason,
                },
            )
        )

    # -- judgements -------------------------------------------------------------------------

    def _judge_freshness(self, provider: str, *, on_schedule: bool, now: datetime) -> None:
        for (pid, item), point in list(self.latest.items()):
            if pid != provider or point.data_timestamp is None:
                continue
            ttl = self.ttl_for(point.category)
            status = judge(point.data_timestamp, now=now, ttl_s=ttl)
            key = (pid, item)
            if status is Freshness.STALE:
                # Stale data fetched on schedule is the provider's fault, not ours: say so once
                # per episode.
                if on_schedule and key not in self._stale:
                    self._stale.add(key)
                    self._announce(
                        DataStale(
                            provider=pid,
                            category=point.category,
                            item=item,
                            data_time=point.data_timestamp,
                            age_s=round((now - point.data_timestamp).total_seconds(), 1),
                            ttl_s=ttl,
                            at=now,
                        )
                    )
            elif key in self._stale:
                self._stale.discard(key)
                self._announce(
                    DataStale(
                        provider=pid,
                        category=point.category,
                        item=item,
                        data_time=point.data_timestamp,
                        age_s=round((now - point.data_timestamp).total_seconds(), 1),
                        ttl_s=ttl,
                        at=now,
                        cleared=True,
                    )
                )

    def _judge_consensus(self, *, now: datetime) -> None:
        views = self.consensus_view(now=now)
        compared = {(p, item) for item, view in views.items() for p in view["providers"]}
        for provider, item in sorted(self._divergent - compared):
            # It left the comparison (no recent value): its episode is over, say so.
            self._divergent.discard((provider, item))
            self._announce(_divergence_cleared(provider, item, None, now))
        for item, view in views.items():
            for provider, entry in view["providers"].items():
                key = (provider, item)
                if entry["divergent"]:
                    if key not in self._divergent:
                        self._divergent.add(key)
                        self._announce(
                            DataDivergent(
                                provider=provider,
                                category="market_data",
                                item=item,
                                value=format(entry["value"], "f"),
                                median=format(view["median"], "f"),
                                deviation_pct=round(entry["deviation_pct"], 4),
                                threshold_pct=view["threshold_pct"],
                                at=now,
                            )
                        )
                elif key in self._divergent:
                    self._divergent.discard(key)
                    self._announce(_divergence_cleared(provider, item, view, now))

    # -- adaptive polling -------------------------------------------------------------------

    def _adapt(self, *, now: datetime) -> None:
        if "market_data" not in self.config.adaptive_categories:
            return
        view = self.consensus_view(now=now).get(ADAPTIVE_ITEM)
        if view is None:
            return
        self._history.append((now, view["median"]))
        horizon = now - timedelta(seconds=self.config.adaptive_lookback_s)
        while self._history and self._history[0][0] < horizon:
            self._history.popleft()
        prices = [price for _, price in self._history]
        low, high = min(prices), max(prices)
        move_pct = float((high - low) / low * 100) if low > 0 else 0.0
        volatile = move_pct > self.config.adaptive_move_pct
        for state in self.schedules.values():
            if state.category != "market_data" or not state.enabled:
                continue
            if volatile:
                wanted = max(self.config.adaptive_floor_s, state.interval_s / 2)
                wanted = max(wanted, self.min_interval_within_budget(state.provider))
                # Never slower than configured: the floor is for speeding up, not down.
                wanted = min(wanted, state.interval_s)
                reason = (
                    f"{ADAPTIVE_ITEM} moved {move_pct:.2f}% in "
                    f"{self.config.adaptive_lookback_s / 60:g} min"
                )
            else:
                wanted, reason = state.interval_s, "quiet again"
            if wanted != state.effective_interval_s:
                self.set_effective_interval(state, wanted, reason=reason, now=now)

    def set_effective_interval(
        self, state: ScheduleState, interval_s: float, *, reason: str, now: datetime
    ) -> None:
        old = state.effective_interval_s
        state.effective_interval_s = interval_s
        state.adaptive_reason = "" if interval_s == state.interval_s else reason
        self._announce(
            IntervalChanged(
                provider=state.provider,
                category=state.category,
                old_interval_s=old,
                new_interval_s=interval_s,
                reason=reason,
                at=now,
            )
        )
        self.on_interval_change(state)

    def min_interval_within_budget(self, provider_id: str) -> float:
        """The shortest collection interval the provider's configured limits allow, leaving
        room for its health checks: requests per window must stay under each limit."""
        spec = self._catalogue.providers[provider_id]
        per_run = sum(spec.endpoints[name].weight for name in data_endpoints(spec)) or 1
        shortest = 0.0
        for window, limit in spec.rate_limits.windows().items():
            span = _WINDOW_SECONDS.get(window)
            if span is None or limit <= 0:
                continue
            # Keep a fifth of each window for health checks, retries and key tests.
            runs_allowed = max(1.0, 0.8 * limit / per_run)
            shortest = max(shortest, span / runs_allowed)
        return shortest


def _per_second_full(result: ProbeResult) -> bool:
    return result.outcome is Outcome.SKIPPED and "(second window full)" in result.reason


def _stored(point: DataPoint) -> DataPoint:
    item = storage_item(point.item)
    if item == point.item:
        return point
    values = {**(point.values or {}), "item": point.item}
    return dataclasses.replace(point, item=item, values=values)


def _divergence_cleared(
    provider: str, item: str, view: dict[str, Any] | None, now: datetime
) -> DataDivergent:
    entry = view["providers"][provider] if view else None
    return DataDivergent(
        provider=provider,
        category="market_data",
        item=item,
        value=format(entry["value"], "f") if entry else "",
        median=format(view["median"], "f") if view else "",
        deviation_pct=round(entry["deviation_pct"], 4) if entry else 0.0,
        threshold_pct=view["threshold_pct"] if view else 0.0,
        at=now,
        cleared=True,
    )


_WINDOW_SECONDS = {
    "second": 1.0,
    "minute": 60.0,
    "hour": 3600.0,
    "day": 86400.0,
    "month": 30 * 86400.0,
}
