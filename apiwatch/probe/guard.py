"""What stands between a due probe and the wire, and the bookkeeping once it returns.

Before: the provider's circuit breaker, then a usable key from its pool, then the budget
gate (every attempt counts, retries included). After: what the provider reported (usage
headers, Retry-After) goes to the budget, rate-limited or rejected keys are rotated away
from, and the outcome feeds the breaker. Events (budget warnings, expired keys, breaker
transitions) go to `emit`; the guard does not know who listens.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apiwatch.budget.gate import BudgetGate
from apiwatch.budget.headers import Report, usage_from_headers
from apiwatch.budget.keys import Key, KeyPool
from apiwatch.budget.shared import LocalState, SharedState
from apiwatch.budget.usage import usage_from_body
from apiwatch.catalogue.schema import EndpointSpec, ProviderSpec
from apiwatch.domain import Outcome, ProbeResult, SkipReason
from apiwatch.probe.breaker import CircuitBreaker

# How long a key that was rate-limited without a Retry-After rests before it is tried again.
KEY_REST_S = 60.0


@dataclass(frozen=True, slots=True)
class Admission:
    key: Key | None
    skip: SkipReason | None = None
    detail: str = ""


class ProbeGuard:
    def __init__(
        self,
        *,
        gate: BudgetGate,
        breaker: CircuitBreaker,
        keys: dict[str, KeyPool],
        clock: Callable[[], float] = time.time,
        emit: Callable[[object], None] = lambda event: None,
        shared: SharedState | None = None,
    ) -> None:
        self.gate = gate
        self.shared = shared or LocalState()
        self.breaker = breaker
        self.keys = keys
        self._clock = clock
        self._emit = emit

    async def admit(
        self, provider: ProviderSpec, endpoint: EndpointSpec, *, key: Key | None = None
    ) -> Admission:
        """Whether to send, and with which key; `key` pins one (a key test), else the pool's."""
        await self._take_shared(provider.id)
        if key is not None:
            return await self._spend(provider, endpoint, key)
        if not self.breaker.allow(provider.id):
            state = self.breaker.state(provider.id)
            retry = f"; half-open trial after {_iso(state.retry_at)}" if state.retry_at else ""
            return Admission(None, SkipReason.CIRCUIT_OPEN, f"circuit_open{retry}")
        pool = self.keys.get(provider.id)
        key = pool.current() if pool else None
        if key is None and provider.endpoint_needs_key(endpoint):
            why = pool.unavailable_reason() if pool else None
            detail = "no_key" if why is None or why == "no_keys" else f"no_key ({why.value})"
            return Admission(None, SkipReason.NO_KEY, detail)
        return await self._spend(provider, endpoint, key)

    async def _spend(
        self, provider: ProviderSpec, endpoint: EndpointSpec, key: Key | None
    ) -> Admission:
        decision = await self.gate.acquire(provider.id, endpoint.weight)
        for warning in decision.warnings:
            self._emit(warning)
        if not decision.allowed:
            until = f" until {_iso_dt(decision.reset_at)}" if decision.reset_at else ""
            window = f" ({decision.window} window full)" if decision.window else " (Retry-After)"
            return Admission(
                None, SkipReason.RATE_LIMIT_BUDGET, f"rate_limit_budget{window}{until}"
            )
        pool = self.keys.get(provider.id)
        if pool is not None and key is not None:
            pool.mark_used(key)
        return Admission(key)

    async def settle(
        self,
        provider: ProviderSpec,
        key: Key | None,
        result: ProbeResult,
        endpoint: EndpointSpec | None = None,
    ) -> None:
        now = self._clock()
        reports: list[Report] = list(usage_from_headers(result.headers, now=now))
        if endpoint is not None and endpoint.usage and result.outcome.is_success:
            reports.extend(usage_from_body(endpoint.usage, result.payload))
        if reports:
            await self.gate.apply(provider.id, reports)
        pool = self.keys.get(provider.id)
        if pool is not None and key is not None:
            if result.outcome is Outcome.RATE_LIMITED:
                rest = result.retry_after_s if result.retry_after_s else KEY_REST_S
                pool.mark_rate_limited(
                    key, datetime.fromtimestamp(now, UTC) + timedelta(seconds=rest)
                )
            elif result.outcome is Outcome.AUTH_ERROR:
                expired = pool.mark_invalid(key)
                if expired is not None:
                    self._emit(expired)
            elif result.outcome.is_success:
                pool.mark_ok(key)
        # Transitions reach listeners through the breaker's own on_transition callback.
        self.breaker.record(provider.id, result.outcome)
        await self._share(provider.id)

    async def _take_shared(self, provider: str) -> None:
        """Adopt what other processes last saw of this provider's breaker and keys."""
        seen = await self.shared.load(provider)
        if "breaker" in seen:
            # Keep our own open/half-open circuit (and its single trial) unless another
            # process closed it; otherwise adopt theirs, failure counts included.
            ours_open = self.breaker.is_open(provider)
            theirs_open = seen["breaker"].get("state") != "closed"
            if not (ours_open and theirs_open):
                self.breaker.restore({provider: seen["breaker"]})
        pool = self.keys.get(provider)
        if "keys" in seen and pool is not None:
            pool.restore(seen["keys"])

    async def _share(self, provider: str) -> None:
        if isinstance(self.shared, LocalState):
            return
        parts: dict[str, object] = {"breaker": self.breaker.state(provider).as_dict()}
        pool = self.keys.get(provider)
        if pool is not None and pool.keys:
            parts["keys"] = pool.snapshot()
        await self.shared.save(provider, **parts)


def _iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat(timespec="seconds")


def _iso_dt(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")
