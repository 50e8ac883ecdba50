"""Adaptive polling: when the market moves, market-data schedules speed up (never past
the provider's budget, never slower than configured) and slow back down when it is quiet."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from apiwatch.budget.windows import window_seconds
from apiwatch.catalogue.loader import Catalogue
from apiwatch.collection.model import ADAPTIVE_ITEM, CollectionConfig, ScheduleState, data_endpoints
from apiwatch.domain import IntervalChanged


class AdaptivePolling:
    """Mixed into `Collection` (which owns the state and `consensus_view`)."""

    config: CollectionConfig
    schedules: dict[str, ScheduleState]
    on_interval_change: Callable[[ScheduleState], None]
    _catalogue: Catalogue
    _history: deque[tuple[datetime, Decimal]]
    _announce: Callable[[object], None]
    consensus_view: Callable[..., dict[str, dict[str, Any]]]

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
        names = data_endpoints(spec)
        per_run = sum(spec.endpoints[name].weight for name in names) or 1
        tiers = [(spec.rate_limits, per_run)] + [
            (spec.endpoints[name].rate_limits, spec.endpoints[name].weight)
            for name in names
            if spec.endpoints[name].rate_limits is not None
        ]
        shortest = 0.0
        for limits, spent in tiers:
            for window, limit in limits.windows().items():  # type: ignore[union-attr]
                # Keep a fifth of each window for health checks, retries and key tests.
                runs_allowed = max(1.0, 0.8 * limit / spent)
                shortest = max(shortest, window_seconds(window) / runs_allowed)
        return shortest
