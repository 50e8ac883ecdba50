"""The simulator's mutable state: scenario per provider, request statistics, and the
fixed-window counters providers report back (Binance used weight, CryptoCompare calls).

All of it lives in one object per app, so two simulators in one process never share state.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from apiwatch.simulator.scenarios import HEALTHY, Scenario, normalize

WINDOWS = {"second": 1, "minute": 60, "hour": 3600, "day": 86_400, "month": 30 * 86_400}


class WindowCounter:
    """Counts in fixed windows aligned to the clock, as Binance does: a request at 00:01:23
    counts toward the 00:01:00 minute."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[int, int]] = {}
        self.total = 0

    def add(self, amount: int = 1, *, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self.total += amount
        for name, size in WINDOWS.items():
            index = int(now // size)
            current, count = self._buckets.get(name, (index, 0))
            self._buckets[name] = (index, (count if current == index else 0) + amount)

    def get(self, window: str, *, now: float | None = None) -> int:
        now = time.time() if now is None else now
        index, count = self._buckets.get(window, (None, 0))
        return count if index == int(now // WINDOWS[window]) else 0

    def seconds_left(self, window: str, *, now: float | None = None) -> int:
        now = time.time() if now is None else now
        size = WINDOWS[window]
        return max(1, int(size - now % size))


class SimState:
    """Scenarios and counters for one running simulator."""

    def __init__(self, provider_ids: list[str]) -> None:
        self.provider_ids = list(provider_ids)
        self.scenarios: dict[str, Scenario] = {}
        self.calls: dict[str, WindowCounter] = {}
        self.weight: dict[str, WindowCounter] = {}
        self.paths: dict[str, Counter[str]] = {}
        self.consecutive_limited: dict[str, int] = {}
        # Set on shutdown so hanging `timeout` handlers return instead of holding the
        # graceful-shutdown wait for its full length.
        self.closing = asyncio.Event()
        self.reset()

    def reset(self) -> None:
        self.scenarios = {p: HEALTHY for p in self.provider_ids}
        self.calls = {p: WindowCounter() for p in self.provider_ids}
        self.weight = {p: WindowCounter() for p in self.provider_ids}
        self.paths = {p: Counter() for p in self.provider_ids}
        self.consecutive_limited = dict.fromkeys(self.provider_ids, 0)

    def check_provider(self, provider: str) -> None:
        if provider not in self.scenarios:
            raise KeyError(f"unknown provider {provider!r}; known: {', '.join(self.provider_ids)}")

    def set_scenario(self, provider: str, scenario: Scenario) -> Scenario:
        """Validate and apply; raises KeyError (provider) or ValueError (scenario)."""
        self.check_provider(provider)
        scenario = normalize(scenario)
        self.scenarios[provider] = scenario
        # A new scenario starts a new episode: Binance's ban escalation counts afresh.
        self.consecutive_limited[provider] = 0
        return scenario

    def count(self, provider: str, path: str) -> None:
        self.calls[provider].add()
        self.paths[provider][path] += 1

    def stats(self) -> dict[str, Any]:
        providers = {
            p: {"requests": self.calls[p].total, "paths": dict(self.paths[p])}
            for p in self.provider_ids
        }
        return {
            "total": sum(v["requests"] for v in providers.values()),
            "providers": providers,
        }

    def scenarios_json(self) -> dict[str, dict[str, Any]]:
        return {p: s.to_json() for p, s in self.scenarios.items()}
