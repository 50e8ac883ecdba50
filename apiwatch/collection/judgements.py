"""Judgements over the latest points: freshness per provider and item (from the payload's
own timestamps) and consensus across providers, announced once per stale or divergent
episode and once when it clears."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from apiwatch.analysis.compliance import tolerance_s
from apiwatch.analysis.consensus import consensus
from apiwatch.analysis.freshness import DEFAULT_TTL_S, Freshness, judge, judge_book
from apiwatch.collection.model import (
    DEFAULT_INTERVAL_S,
    NEWS_LATEST,
    CollectionConfig,
    Point,
    ScheduleState,
)
from apiwatch.domain import DataDivergent, DataStale


class Judgements:
    """Freshness and consensus, mixed into `Collection` (which owns the state)."""

    config: CollectionConfig
    latest: dict[tuple[str, str], Point]
    schedules: dict[str, ScheduleState]
    _stale: set[tuple[str, str]]
    _divergent: set[tuple[str, str]]
    _announce: Callable[[object], None]
    _clock: Callable[[], datetime]

    def ttl_for(self, category: str) -> float:
        return float(self.config.ttl_s.get(category, DEFAULT_TTL_S.get(category, 3600.0)))

    def ttl_of(self, point: Point) -> float:
        """An order book (`book:…`) has the order-book TTL, anything else its category's."""
        return self.ttl_for("order_book" if point.item.startswith("book:") else point.category)

    def refresh_s(self, provider: str, category: str) -> float:
        """How long a point may wait for its next collection: the provider's interval in
        effect (its category's default before the scheduler starts) and its tolerance."""
        state = self.schedules.get(provider)
        interval = state.effective_interval_s if state else DEFAULT_INTERVAL_S.get(category, 60.0)
        tolerance = tolerance_s(
            interval, max_s=self.config.tolerance_max_s, fraction=self.config.tolerance_fraction
        )
        return interval + tolerance

    def judge_point(self, point: Point, *, now: datetime) -> Freshness:
        """A book against its own TTL when fetched and its schedule since; anything else
        against its category's TTL."""
        ttl = self.ttl_of(point)
        if not point.item.startswith("book:"):
            return judge(point.data_timestamp, now=now, ttl_s=ttl)
        return judge_book(
            point.data_timestamp,
            fetched_at=point.fetched_at,
            now=now,
            ttl_s=ttl,
            refresh_s=self.refresh_s(point.provider, point.category),
        )

    def freshness(self, *, now: datetime | None = None) -> list[dict[str, Any]]:
        """Per provider and item: data time, age, TTL and status (GET /api/freshness)."""
        now = now or self._clock()
        out = []
        for (provider, item), point in sorted(self.latest.items()):
            if item.startswith("news:") and item != NEWS_LATEST:
                continue
            ttl = self.ttl_of(point)
            status = self.judge_point(point, now=now)
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
                    "note": _note(point, self.refresh_s(provider, point.category)),
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

    def _judge_freshness(self, provider: str, *, on_schedule: bool, now: datetime) -> None:
        for (pid, item), point in list(self.latest.items()):
            if pid != provider or point.data_timestamp is None:
                continue
            ttl = self.ttl_of(point)
            status = self.judge_point(point, now=now)
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
        # Order books' mids are judged by the book checks (`cross_venue`), which alert on
        # their own; a data_divergent alert for the same mid would say it twice.
        views = {
            item: view
            for item, view in self.consensus_view(now=now).items()
            if not item.startswith("book:")
        }
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


def _note(point: Point, refresh_s: float) -> str:
    if point.data_timestamp is None:
        return "the payload carries no timestamp"
    if point.item.startswith("book:"):
        return (
            "judged by its age when fetched, and between collections against the TTL plus "
            f"{refresh_s:g} s to the next one"
        )
    return ""


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
