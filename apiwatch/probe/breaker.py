"""Per-provider circuit breakers: stop sending to a provider that keeps failing.

closed → open after `failure_threshold` consecutive failures → half-open once `cooldown_s`
has passed → closed on a success, or open again (with a fresh cool-down) on a failure. In
half-open one trial request at a time is let through, so a provider that is coming back is
not greeted by every queued job at once.

What counts as a failure is `Outcome.is_failure`. `skipped` and `rate_limited` count as
neither failure nor success: a skipped probe never reached the provider, and rate limits
are the budgets' business (tripping the breaker on 429s would only hide the real reset time).

Time is unix seconds from an injected clock, so a snapshot taken before a restart can be
restored after it and an open breaker stays open until its cool-down ends on the wall clock.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from apiwatch.domain import Outcome


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerState:
    """What one provider's breaker looks like now; times are unix seconds."""

    provider: str
    state: CircuitState
    consecutive_failures: int
    opened_at: float | None
    retry_at: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "consecutive_failures": self.consecutive_failures,
            "opened_at": self.opened_at,
            "retry_at": self.retry_at,
        }


@dataclass(frozen=True, slots=True)
class BreakerTransition:
    """A breaker moved from one state to another (`old` → `new`) at unix time `at`."""

    provider: str
    old: CircuitState
    new: CircuitState
    at: float
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "from": self.old.value,
            "to": self.new.value,
            "at": self.at,
            "reason": self.reason,
        }


@dataclass(slots=True)
class _Circuit:
    state: CircuitState = CircuitState.CLOSED
    consecutive_failures: int = 0
    opened_at: float | None = None
    retry_at: float | None = None
    # When the half-open trial was handed out; None when no trial is in flight.
    trial_started_at: float | None = None


class CircuitBreaker:
    """The breakers of every provider, created closed on first mention."""

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        cooldown_s: float = 30.0,
        trial_timeout_s: float = 120.0,
        clock: Callable[[], float] = time.time,
        on_transition: Callable[[BreakerTransition], None] | None = None,
    ) -> None:
        """`trial_timeout_s`: a half-open trial that never reports back (its task was
        cancelled, the process lost it) is given up after this long and another trial is
        allowed; otherwise the breaker would stay half-open and closed to traffic forever.
        The default outlasts a probe with all its immediate retries.

        `on_transition` hears every transition, including open → half-open, which happens
        inside `allow()`/`state()` and so has no return value to travel in.
        """
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if cooldown_s < 0 or trial_timeout_s <= 0:
            raise ValueError("cooldown_s must be ≥ 0 and trial_timeout_s > 0")
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self.trial_timeout_s = trial_timeout_s
        self._clock = clock
        self._on_transition = on_transition
        self._circuits: dict[str, _Circuit] = {}

    def allow(self, provider: str) -> bool:
        """Whether a request to `provider` may be sent now.

        False while open, and in half-open while the one trial is in flight; the caller
        records the probe as `skipped` with reason `circuit_open`. A True in half-open
        hands out the trial, so call this only when about to send.
        """
        now = self._clock()
        circuit = self._advance(provider, now)
        if circuit.state is CircuitState.CLOSED:
            return True
        if circuit.state is CircuitState.OPEN:
            return False
        trial = circuit.trial_started_at
        if trial is not None and now - trial < self.trial_timeout_s:
            return False
        circuit.trial_started_at = now
        return True

    def record(self, provider: str, outcome: Outcome) -> BreakerTransition | None:
        """Feed the verdict of a request sent to `provider`; returns the transition it caused."""
        now = self._clock()
        circuit = self._advance(provider, now)
        if outcome.is_success:
            return self._on_success(provider, circuit, now)
        if outcome.is_failure:
            return self._on_failure(provider, circuit, now, outcome)
        if circuit.state is CircuitState.HALF_OPEN:
            # A skipped or rate-limited trial says nothing about the provider's health:
            # free the slot so the next request can be the trial instead.
            circuit.trial_started_at = None
        return None

    def state(self, provider: str) -> BreakerState:
        circuit = self._advance(provider, self._clock())
        return BreakerState(
            provider=provider,
            state=circuit.state,
            consecutive_failures=circuit.consecutive_failures,
            opened_at=circuit.opened_at,
            retry_at=circuit.retry_at,
        )

    def is_open(self, provider: str) -> bool:
        """Open or half-open: the provider counts as offline until a trial succeeds."""
        return self.state(provider).state is not CircuitState.CLOSED

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every provider's breaker, JSON-friendly, for persisting and for the dashboard.

        An in-flight trial is not kept: after a restart nothing is in flight.
        """
        return {provider: self.state(provider).as_dict() for provider in sorted(self._circuits)}

    def restore(self, snapshot: Mapping[str, Mapping[str, Any]]) -> list[str]:
        """Load a `snapshot()`; returns the providers whose entries could not be read.

        Unreadable entries are skipped rather than failing start-up: a breaker that starts
        closed reopens after `failure_threshold` failures anyway. An open breaker keeps its
        saved `retry_at` (or `opened_at` + cool-down), so it stays open across the restart
        until that time has passed on the wall clock.
        """
        skipped: list[str] = []
        for provider, entry in snapshot.items():
            try:
                circuit = self._circuit_from(entry)
            except (KeyError, TypeError, ValueError):
                skipped.append(provider)
                continue
            self._circuits[provider] = circuit
        return skipped

    # -- internals -------------------------------------------------------------------------

    def _circuit_from(self, entry: Mapping[str, Any]) -> _Circuit:
        state = CircuitState(entry["state"])
        failures = int(entry.get("consecutive_failures") or 0)
        opened_at = _finite_or_none(entry.get("opened_at"))
        retry_at = _finite_or_none(entry.get("retry_at"))
        if state is CircuitState.CLOSED:
            return _Circuit(consecutive_failures=max(failures, 0))
        if retry_at is None:
            if opened_at is None:
                raise ValueError("an open breaker needs opened_at or retry_at")
            retry_at = opened_at + self.cooldown_s
        return _Circuit(
            state=state,
            consecutive_failures=max(failures, 0),
            opened_at=opened_at,
            retry_at=retry_at,
        )

    def _advance(self, provider: str, now: float) -> _Circuit:
        """The provider's circuit, moved from open to half-open if its cool-down is over."""
        circuit = self._circuits.setdefault(provider, _Circuit())
        if (
            circuit.state is CircuitState.OPEN
            and circuit.retry_at is not None
            and now >= circuit.retry_at
        ):
            circuit.state = CircuitState.HALF_OPEN
            circuit.trial_started_at = None
            self._emit(
                BreakerTransition(
                    provider,
                    CircuitState.OPEN,
                    CircuitState.HALF_OPEN,
                    now,
                    f"cool-down of {self.cooldown_s:g} s over; letting one trial through",
                )
            )
        return circuit

    def _on_success(self, provider: str, circuit: _Circuit, now: float) -> BreakerTransition | None:
        old = circuit.state
        circuit.consecutive_failures = 0
        if old is CircuitState.CLOSED:
            return None
        if old is CircuitState.OPEN:
            # A straggler sent before the breaker opened; the cool-down still stands.
            return None
        circuit.state = CircuitState.CLOSED
        circuit.opened_at = circuit.retry_at = circuit.trial_started_at = None
        return self._emit(
            BreakerTransition(provider, old, CircuitState.CLOSED, now, "trial request succeeded")
        )

    def _on_failure(
        self, provider: str, circuit: _Circuit, now: float, outcome: Outcome
    ) -> BreakerTransition | None:
        circuit.consecutive_failures += 1
        old = circuit.state
        if old is CircuitState.OPEN:
            # Stragglers do not extend the cool-down: it runs from when the breaker opened.
            return None
        if old is CircuitState.CLOSED and circuit.consecutive_failures < self.failure_threshold:
            return None
        circuit.state = CircuitState.OPEN
        circuit.opened_at = now
        circuit.retry_at = now + self.cooldown_s
        circuit.trial_started_at = None
        if old is CircuitState.HALF_OPEN:
            reason = f"trial request failed ({outcome.value})"
        else:
            reason = f"{circuit.consecutive_failures} consecutive failures (last {outcome.value})"
        return self._emit(BreakerTransition(provider, old, CircuitState.OPEN, now, reason))

    def _emit(self, transition: BreakerTransition) -> BreakerTransition:
        if self._on_transition is not None:
            self._on_transition(transition)
        return transition


def _finite_or_none(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("not a finite time")
    return number
