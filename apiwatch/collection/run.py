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
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import structlog

from apiwatch.analysis.books import BookTracker
from apiwatch.analysis.compliance import judge_start, tolerance_s
from apiwatch.catalogue.loader import Catalogue
from apiwatch.catalogue.schema import ProviderSpec
from apiwatch.collection.adaptive import AdaptivePolling
from apiwatch.collection.integrity import Integrity
from apiwatch.collection.judgements import Judgements
from apiwatch.collection.model import (
    NEWS_LATEST,
    CollectionConfig,
    Point,
    ScheduleState,
    data_endpoints,
    skip_reason,
    storage_item,
)
from apiwatch.collectors.base import CollectorError, DataPoint
from apiwatch.collectors.registry import get_collector
from apiwatch.domain import Outcome, ProbeResult, Status, utcnow
from apiwatch.probe.engine import ProbeEngine

log = structlog.get_logger("apiwatch.collection")


class Collection(Judgements, Integrity, AdaptivePolling):
    """One provider's collection run, and the latest points the judgements read."""

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
        self.books: dict[tuple[str, str], dict[str, Any]] = {}
        self._book_tracker = BookTracker()
        self._failing: set[tuple[str, str, str]] = set()
        self._seen_news: set[str] = set()
        self._seen_order: deque[str] = deque()
        self.on_interval_change: Callable[[ScheduleState], None] = lambda state: None

    # -- state ------------------------------------------------------------------------------

    def restore(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Start from the latest stored point per provider and item."""
        for row in rows:
            point = Point(**{name: row[name] for name in Point.__dataclass_fields__})
            self.latest[(point.provider, point.item)] = point

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
                self.judge_cross_venue(self.consensus_view(now=fetched_at), now=fetched_at)
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
            final = results[-1]
            collected: list[DataPoint] = []
            error: str | None = None
            fetched = final.outcome.is_success
            if fetched:
                collector = get_collector(spec.endpoints[name].collector or "")
                rejected_reason: str | None = None
                try:
                    collected = collector(final.payload, provider=provider_id, category=category)
                except CollectorError as rejected:
                    error = str(rejected)[:300]
                    rejected_reason = f"unreadable payload: {error}"
                    log.warning(
                        "collector_rejected", provider=provider_id, endpoint=name, error=error
                    )
                collected, failures = self.judge_integrity(spec, collected, now=self._clock())
                if rejected_reason is None and failures:
                    # A 200 OK whose book or ticker fails a check is invalid data.
                    more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
                    rejected_reason = failures[0].reason() + more
                if rejected_reason is not None:
                    # Garbage behind a 200 OK (a body the collector cannot read, a book that
                    # fails a check) is invalid data: the result says so before it is
                    # recorded and counted, so it alerts and moves the status like any other
                    # invalid payload.
                    final = dataclasses.replace(
                        final, outcome=Outcome.INVALID_PAYLOAD, reason=rejected_reason[:500]
                    )
                    results[-1] = final
                    error = final.reason
            for result in results:
                self._handle(result)
            if final.outcome is Outcome.SKIPPED:
                summary["skipped"].append({"endpoint": name, "reason": skip_reason(final)})
                continue
            summary["fetched"] += int(fetched)
            points.extend(collected)
            if error is not None:
                summary["errors"].append({"endpoint": name, "error": error})
            elif not final.outcome.is_success:
                summary["errors"].append({"endpoint": name, "error": final.outcome.value})

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


def _per_second_full(result: ProbeResult) -> bool:
    return result.outcome is Outcome.SKIPPED and "(second window full)" in result.reason


def _stored(point: DataPoint) -> DataPoint:
    item = storage_item(point.item)
    if item == point.item:
        return point
    values = {**(point.values or {}), "item": point.item}
    return dataclasses.replace(point, item=item, values=values)
