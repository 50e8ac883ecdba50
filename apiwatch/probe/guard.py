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

import structlog

from apiwatch.budget.gate import BudgetGate
from apiwatch.budget.headers import BlockReport, Report, UsageReport, usage_from_headers
from apiwatch.budget.keys import Key, KeyPool
from apiwatch.budget.shared import LocalState, SharedState
from apiwatch.budget.tiers import describe_scope
from apiwatch.budget.usage import usage_from_body
from apiwatch.catalogue.schema import EndpointSpec, ProviderSpec
from apiwatch.domain import Outcome, ProbeResult, SkipReason
from apiwatch.probe.breaker import CircuitBreaker

# How long a key that was rate-limited without a Retry-After rests before it is tried again.
KEY_REST_S = 60.0
# A Retry-After longer than this is not believed (a year): it is an upstream bug, not a ban.
MAX_BLOCK_S = 366 * 86_400

log = structlog.get_logger("apiwatch.guard")


def _plausible(report: Report) -> bool:
    if isinstance(report, UsageReport):
        return report.used >= 0 and (report.limit is None or report.limit >= 1)
    return report.until.timestamp() - time.time() <= MAX_BLOCK_S


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
        # provider -> part -> `saved_at` of the newest shared state we saved or adopted
        self._versions: dict[str, dict[str, float]] = {}

    async def admit(
        self,
        provider: ProviderSpec,
        endpoint: EndpointSpec,
        *,
        key: Key | None = None,
        endpoint_name: str | None = None,
    ) -> Admission:
        """Whether to send, and with which key; `key` pins one (a key test), else the pool's.
        `endpoint_name` puts the request in that endpoint's budget tier too."""
        await self._take_shared(provider.id)
        if key is not None:
            return await self._spend(provider, endpoint, key, endpoint_name)
        if not self.breaker.allow(provider.id):
            state = self.breaker.state(provider.id)
            retry = f"; half-open trial after {_iso(state.retry_at)}" if state.retry_at else ""
            return Admission(None, SkipReason.CIRCUIT_OPEN, f"circuit_open{retry}")
        pool = self.keys.get(provider.id)
        key = pool.current() if pool else None
        if key is None and provider.endpoint_needs_key(endpoint):
            why = pool.unavailable_reason() if pool else None
            detail = "no_key" if why is None or why == "no_keys" else f"no_key ({why.value})"
            admission = Admission(None, SkipReason.NO_KEY, detail)
        else:
            admission = await self._spend(provider, endpoint, key, endpoint_name)
        if admission.skip is not None:
            # allow() may have handed out the half-open trial; a probe not sent gives it back.
            self.breaker.record(provider.id, Outcome.SKIPPED)
        return admission

    async def _spend(
        self,
        provider: ProviderSpec,
        endpoint: EndpointSpec,
        key: Key | None,
        endpoint_name: str | None,
    ) -> Admission:
        decision = await self.gate.acquire(
            provider.id,
            endpoint.weight,
            endpoint=endpoint_name,
            key=key.env_name if key is not None else None,
        )
        for warning in decision.warnings:
            self._emit(warning)
        if decision.blocked is not None:
            self._emit(decision.blocked)
        if not decision.allowed:
            until = f" until {_iso_dt(decision.reset_at)}" if decision.reset_at else ""
            tier = describe_scope(f"{decision.tier}:{decision.scope}")
            window = (
                f" ({tier}{decision.window} window full)" if decision.window else " (Retry-After)"
            )
            dependency = getattr(self.shared, "dependency", None)
            if decision.window and dependency is not None and not dependency.ok:
                window = (
                    f" (local share of the {tier}{decision.window} window full: shared state away)"
                )
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
        *,
        final: bool = True,
        key_test: bool = False,
    ) -> None:
        """Book what one attempt taught us. Only the final attempt of a check feeds the
        breaker (it counts failed checks), and a key test never does (it is about the key)."""
        now = self._clock()
        pool = self.keys.get(provider.id)
        await self._apply_reports(
            provider, endpoint, result, now, per_key=bool(pool and key and len(pool.keys) > 1)
        )
        if pool is not None and key is not None:
            if result.outcome is Outcome.RATE_LIMITED:
                rest = min(result.retry_after_s or KEY_REST_S, MAX_BLOCK_S)
                pool.mark_rate_limited(
                    key, datetime.fromtimestamp(now, UTC) + timedelta(seconds=rest)
                )
            elif result.outcome is Outcome.AUTH_ERROR:
                expired = pool.mark_invalid(key)
                if expired is not None:
                    self._emit(expired)
            elif result.outcome.is_success:
                pool.mark_ok(key)
        if final and not key_test:
            # Transitions reach listeners through the breaker's own on_transition callback.
            self.breaker.record(provider.id, result.outcome)
        await self._share(provider.id)

    async def _apply_reports(
        self,
        provider: ProviderSpec,
        endpoint: EndpointSpec | None,
        result: ProbeResult,
        now: float,
        *,
        per_key: bool,
    ) -> None:
        """Feed what the provider reported into the budget; an upstream's odd numbers are
        dropped and logged, never raised: they must not turn a probe into a crash."""
        try:
            reports: list[Report] = list(usage_from_headers(result.headers, now=now))
            if (
                result.outcome is Outcome.RATE_LIMITED
                and result.retry_after_s
                and not any(isinstance(r, BlockReport) for r in reports)
            ):
                # The provider's own ban signal (Bybit's 403) carries its length in the
                # catalogue, not in a Retry-After header.
                until = datetime.fromtimestamp(now + result.retry_after_s, UTC)
                reports.append(BlockReport(until=until))
            if endpoint is not None and endpoint.usage and result.outcome.is_success:
                reports.extend(usage_from_body(endpoint.usage, result.payload))
            if per_key:
                # With backup keys, a Retry-After rests the key that got it (see below), not
                # the whole provider: the next key may be sent.
                reports = [r for r in reports if not isinstance(r, BlockReport)]
            reports = [r for r in reports if _plausible(r)]
            if reports:
                await self.gate.apply(provider.id, reports, endpoint=result.endpoint)
        except (ValueError, OverflowError, TypeError) as exc:
            log.warning("usage_report_ignored", provider=provider.id, error=str(exc)[:200])

    async def _take_shared(self, provider: str) -> None:
        """Adopt what other processes last saw of this provider's breaker and keys."""
        seen = await self.shared.load(provider)
        known = self._versions.setdefault(provider, {})
        # Only a state saved after the one we last saved or adopted is news: an older read
        # (still in flight when we saved) must not undo what we just learned.
        breaker = seen.get("breaker")
        if isinstance(breaker, dict) and _newer(breaker, known, "breaker"):
            # Keep our own open/half-open circuit (and its single trial) unless another
            # process closed it; otherwise adopt theirs, failure counts included.
            ours_open = self.breaker.is_open(provider)
            theirs_open = breaker.get("state") != "closed"
            if not (ours_open and theirs_open):
                self.breaker.restore({provider: breaker})
        pool = self.keys.get(provider)
        keys = seen.get("keys")
        if pool is not None and isinstance(keys, dict) and _newer(keys, known, "keys"):
            pool.restore(keys.get("keys") or {})

    async def _share(self, provider: str) -> None:
        if isinstance(self.shared, LocalState):
            return
        stamp = self._clock()
        parts: dict[str, object] = {
            "breaker": {**self.breaker.state(provider).as_dict(), "saved_at": stamp}
        }
        pool = self.keys.get(provider)
        if pool is not None and pool.keys:
            parts["keys"] = {"keys": pool.snapshot(), "saved_at": stamp}
        self._versions.setdefault(provider, {}).update(dict.fromkeys(parts, stamp))
        await self.shared.save(provider, **parts)


def _newer(part: dict[str, object], known: dict[str, float], name: str) -> bool:
    stamp = part.get("saved_at")
    if not isinstance(stamp, int | float) or stamp <= known.get(name, float("-inf")):
        return False
    known[name] = float(stamp)
    return True


def _iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat(timespec="seconds")


def _iso_dt(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")
