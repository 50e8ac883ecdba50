"""The outbound budget gate: may a request of this weight go to this provider now?

The gate owns the rules (which windows a provider has, when a request is refused, when a
warning is due, how a provider's own figures and `Retry-After` override our counting); the
store owns the counters and their atomicity; decisions.py holds the answers it gives and the
forecast of each window. Time comes from an injected clock, so tests move it instead of
waiting.

Budgets are hierarchical: a provider's limits sit in tiers, and a request passes only when
every tier it touches has room, counted in all of them at once or in none:
- `ip`: the provider-wide tier, shared by every endpoint and key from this address
  (Binance's request weight, Bybit's 600 per 5 s);
- `endpoint`: one endpoint's own limit (OKX's "20 per 2 s" for the ticker, 40 for books);
- `key`: one API key's own limit, each key counted apart.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from apiwatch.budget.decisions import (
    BudgetBlocked,
    BudgetWarning,
    Decision,
    WindowUsage,
    window_usage,
)
from apiwatch.budget.headers import BlockReport, Report, UsageReport
from apiwatch.budget.stores.base import BudgetStore, Slot
from apiwatch.budget.stores.memory import MemoryBudgetStore
from apiwatch.budget.tiers import (
    Windows,
    scope_order,
    tier_of,
    tier_windows,
)
from apiwatch.budget.windows import (
    WINDOWS,
    check_window,
    period,
    to_datetime,
    to_unix,
    window_seconds,
)
from apiwatch.domain import SkipReason

REASON = SkipReason.RATE_LIMIT_BUDGET.value
# The tier of a provider or endpoint without configured limits: every window, no limit.
_UNCONFIGURED: Windows = tuple((w, 0) for w in WINDOWS)


class BudgetGate:
    """Rate-limit budgets of every provider, over any store.

    `limits` maps provider id to its ip-tier windows and limits, as `RateLimits.windows()`
    gives them: `{"etherscan": {"second": 3, "day": 100000}}`; `endpoint_limits` maps
    provider to endpoint to windows, `key_limits` provider to the windows of each key.
    """

    def __init__(
        self,
        limits: Mapping[str, Mapping[str, int]],
        store: BudgetStore | None = None,
        *,
        clock: Callable[[], float] = time.time,
        warn_at: float = 0.8,
        endpoint_limits: Mapping[str, Mapping[str, Mapping[str, int]]] | None = None,
        key_limits: Mapping[str, Mapping[str, int]] | None = None,
    ) -> None:
        if not 0 < warn_at <= 1:
            raise ValueError(f"warn_at must be in (0, 1], got {warn_at}")
        # provider -> scope -> windows; the key tier is stored under the scope "key:*".
        self._limits: dict[str, dict[str, Windows]] = {}
        for provider, windows in limits.items():
            self._limits.setdefault(provider, {})[""] = tier_windows(windows, provider)
        for provider, endpoints in (endpoint_limits or {}).items():
            for endpoint, windows in endpoints.items():
                self._limits.setdefault(provider, {})[f"endpoint:{endpoint}"] = tier_windows(
                    windows, f"{provider} {endpoint}"
                )
        for provider, windows in (key_limits or {}).items():
            self._limits.setdefault(provider, {})["key:*"] = tier_windows(
                windows, f"{provider} key"
            )
        self._store: BudgetStore = store if store is not None else MemoryBudgetStore()
        self._clock = clock
        self._warn_at = warn_at
        # Providers a snapshot shows: the catalogue's, then any that reported or blocked us;
        # per provider, the tier scopes seen (configured, reported or used).
        self._seen: dict[str, dict[str, None]] = {
            provider: dict.fromkeys(s for s in scopes if s != "key:*")
            for provider, scopes in self._limits.items()
        }
        # (windows, scope) -> their slots in the second `_slot_second`. Slots name no
        # provider, so every provider with the same tiers (1,000 of them with none) shares
        # one build per second.
        self._slot_cache: dict[tuple[Windows, str], tuple[Slot, ...]] = {}
        self._slot_second = -1.0
        # (provider, scope, window) -> end of the period whose block was announced.
        self._blocks_told: dict[tuple[str, str, str], float] = {}

    def configure(
        self,
        provider: str,
        limits: Mapping[str, int],
        *,
        endpoint_limits: Mapping[str, Mapping[str, int]] | None = None,
        key_limits: Mapping[str, int] | None = None,
    ) -> None:
        """Replace one provider's configured tiers (its catalogue entry changed at run time).
        Counts already made stay in the store: a window keeps what it spent."""
        scopes: dict[str, Windows] = {}
        if limits:
            scopes[""] = tier_windows(limits, provider)
        for endpoint, windows in (endpoint_limits or {}).items():
            scopes[f"endpoint:{endpoint}"] = tier_windows(windows, f"{provider} {endpoint}")
        if key_limits:
            scopes["key:*"] = tier_windows(key_limits, f"{provider} key")
        self._limits[provider] = scopes
        seen = self._seen.setdefault(provider, {})
        for scope in scopes:
            if scope != "key:*":
                seen.setdefault(scope, None)

    def forget(self, provider: str) -> None:
        """Drop a removed provider's tiers and snapshot entries (its counters expire)."""
        self._limits.pop(provider, None)
        self._seen.pop(provider, None)

    def _configured(self, provider: str, scope: str) -> Windows | None:
        scopes = self._limits.get(provider, {})
        if scope.startswith("key:"):
            return scopes.get("key:*")
        return scopes.get(scope)

    def _see(self, provider: str, scope: str = "") -> None:
        self._seen.setdefault(provider, {}).setdefault(scope, None)

    def _tier_slots(self, provider: str, scope: str, now: float) -> tuple[Slot, ...]:
        # Every named window, configured or not: a provider may report a limit the
        # catalogue lacks, and the store enforces it for that period. Every boundary is a
        # whole second, so the slots hold for the rest of this second; reusing them took
        # an in-memory acquire from ~39 to ~9 µs on the benchmark machine. The cache is
        # keyed by the tier's windows, not the provider: with every provider probed once a
        # second a per-provider cache missed on every probe.
        second = now // 1
        if second != self._slot_second:
            self._slot_cache.clear()
            self._slot_second = second
        windows = self._configured(provider, scope) or _UNCONFIGURED
        cached = self._slot_cache.get((windows, scope))
        if cached is not None:
            return cached
        slots = tuple(
            Slot(p.window, p.start, p.end, limit, scope)
            for window, limit in windows
            for p in (period(window, now),)
        )
        self._slot_cache[(windows, scope)] = slots
        return slots

    def _scopes(self, provider: str, endpoint: str | None, key: str | None) -> list[str]:
        """The tiers one request touches: always the ip tier; the endpoint's when it has
        limits (configured or reported); the key's when keys have limits."""
        scopes = [""]
        seen = self._seen.get(provider, {})
        if endpoint is not None and f"endpoint:{endpoint}" in seen:
            scopes.append(f"endpoint:{endpoint}")
        if key is not None and self._configured(provider, "key:*") is not None:
            scopes.append(f"key:{key}")
            self._see(provider, f"key:{key}")
        return scopes

    async def acquire(
        self,
        provider: str,
        weight: int = 1,
        *,
        endpoint: str | None = None,
        key: str | None = None,
    ) -> Decision:
        """Count `weight` against every window of every tier the request touches, or refuse
        without counting anywhere. `key` names the key (its environment variable)."""
        if weight < 1:
            raise ValueError(f"weight must be at least 1, got {weight}")
        now = self._clock()
        slots = tuple(
            slot
            for scope in self._scopes(provider, endpoint, key)
            for slot in self._tier_slots(provider, scope, now)
        )
        result = await self._store.acquire(
            provider, slots, weight=weight, now=now, warn_at=self._warn_at
        )
        if result.allowed and not result.crossings:
            return Decision(allowed=True, warnings=[])  # the usual answer: nothing to build
        ends = {(slot.scope, slot.window): slot.end for slot in slots}
        warnings = [
            BudgetWarning(
                provider=provider,
                window=c.window,
                used=c.used,
                limit=c.limit,
                percent=100.0 * c.used / c.limit,
                reset_at=to_datetime(ends[(c.scope, c.window)]),
                tier=tier_of(c.scope)[0],
                scope=tier_of(c.scope)[1],
            )
            for c in result.crossings
        ]
        if result.allowed:
            return Decision(allowed=True, warnings=warnings)
        blocked = None
        if result.refused_by is not None:
            reset = ends[(result.refused_scope, result.refused_by)]
            blocked = await self._first_block(
                provider, slots, result.refused_scope, result.refused_by
            )
        else:
            reset = result.blocked_until if result.blocked_until is not None else now
        tier, name = tier_of(result.refused_scope)
        return Decision(
            allowed=False,
            reason=REASON,
            window=result.refused_by,
            reset_at=to_datetime(reset),
            warnings=warnings,
            tier=tier,
            scope=name,
            blocked=blocked,
        )

    async def _first_block(
        self, provider: str, slots: tuple[Slot, ...], scope: str, window: str
    ) -> BudgetBlocked | None:
        """The block event for a window's first refusal in its period (one store read), None
        for the ones after: a blocked provider is refused on every check."""
        if window_seconds(window) < 60:
            # Routine: a burst waits a second or two (collections pace themselves).
            return None
        slot = next(s for s in slots if s.window == window and s.scope == scope)
        if self._blocks_told.get((provider, scope, window)) == slot.end:
            return None
        self._blocks_told[(provider, scope, window)] = slot.end
        (state,) = await self._store.read(provider, [slot])
        usage = window_usage(provider, slot, state, self._clock())
        tier, name = tier_of(scope)
        return BudgetBlocked(
            provider=provider,
            window=window,
            used=usage.used if usage else slot.limit,
            limit=usage.limit if usage else slot.limit,
            reset_at=usage.reset_at if usage else to_datetime(slot.end),
            tier=tier,
            scope=name,
        )

    async def report(
        self,
        provider: str,
        window: str,
        used: int,
        *,
        limit: int | None = None,
        reset_at: datetime | float | None = None,
        endpoint: str | None = None,
    ) -> None:
        """Take the provider's own figure for the current period of `window` (of the
        endpoint's tier when `endpoint` is given, else of the ip tier).

        The higher of the reported and counted figures is kept: a report lags the requests
        still in flight when the provider counted it, so letting a lower report replace our
        count could send more than the limit. A reported `limit` overrides the catalogue's
        for this period. A full window whose reported reset is later than our period's end
        blocks the provider until then.
        """
        check_window(window)
        if used < 0:
            raise ValueError(f"used must not be negative, got {used}")
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        now = self._clock()
        scope = "" if endpoint is None else f"endpoint:{endpoint}"
        self._see(provider, scope)
        slots = self._tier_slots(provider, scope, now)
        slot = next((s for s in slots if s.window == window), None)
        if slot is None:
            # A window this tier has no limit for in the catalogue: count it from now on.
            p = period(window, now)
            slot = Slot(window, p.start, p.end, 0, scope)
        reset = None if reset_at is None else to_unix(reset_at)
        kept = await self._store.report(
            provider, slot, used=used, limit=limit, reset_at=reset, now=now
        )
        effective_limit = limit if limit is not None else slot.limit
        if reset is not None and reset > slot.end and effective_limit and kept >= effective_limit:
            await self._store.block_until(provider, reset, now=now)

    async def restore(
        self,
        provider: str,
        used: Mapping[str, int],
        *,
        endpoint: str | None = None,
        key: str | None = None,
    ) -> bool:
        """Start the current periods of one tier's windows from `used` (window -> figure, as
        stored before a restart), so a restart never grants a fresh quota: the provider-wide
        tier, or the tier of `endpoint` or of `key` (its environment variable) when the
        catalogue gives that tier limits. Only a store that forgets on restart takes it (the
        in-process one); False when nothing was kept."""
        restore = getattr(self._store, "restore", None)
        if restore is None:
            return False
        scope = "" if endpoint is None else f"endpoint:{endpoint}"
        if key is not None:
            scope = f"key:{key}"
        if scope and self._configured(provider, scope) is None:
            return False  # a tier without limits of its own counts nothing to restore
        if scope:
            self._see(provider, scope)
        now = self._clock()
        for slot in self._tier_slots(provider, scope, now):
            figure = used.get(slot.window, 0)
            if figure > 0:
                restore(provider, slot, figure)
        return True

    async def block_until(self, provider: str, until: datetime | float) -> None:
        """Refuse every request to `provider` before `until` (keeps the later of two blocks)."""
        now = self._clock()
        self._see(provider)
        await self._store.block_until(provider, to_unix(until), now=now)

    async def blocked_until(self, provider: str) -> datetime | None:
        """When a `Retry-After` block on `provider` ends, or None if there is none."""
        until = await self._store.blocked_until(provider, now=self._clock())
        return None if until is None else to_datetime(until)

    async def apply(
        self, provider: str, reports: Iterable[Report], *, endpoint: str | None = None
    ) -> None:
        """Apply what `headers.usage_from_headers` found in a response to `endpoint`."""
        for item in reports:
            if isinstance(item, BlockReport):
                await self.block_until(provider, item.until)
            elif isinstance(item, UsageReport):
                await self.report(
                    provider,
                    item.window,
                    item.used,
                    limit=item.limit,
                    reset_at=item.reset_at,
                    endpoint=endpoint if item.tier == "endpoint" else None,
                )

    async def snapshot(self, provider: str | None = None) -> list[WindowUsage]:
        """Every window with a limit (configured or reported), per provider and tier: the ip
        tier first, then endpoints, then keys; shortest window first within each."""
        providers = list(self._seen) if provider is None else [provider]
        now = self._clock()
        usages: list[WindowUsage] = []
        for name in providers:
            for scope in sorted(self._seen.get(name, {"": None}), key=scope_order):
                slots = self._tier_slots(name, scope, now)
                states = await self._store.read(name, slots)
                for slot, state in zip(slots, states, strict=True):
                    usage = window_usage(name, slot, state, now)
                    if usage is not None:
                        usages.append(usage)
        return usages
