"""The live state of every provider: its recent results and the Status derived from them.

It owns no I/O; `observe` returns the StatusChange (if any) and the caller records and
publishes it, so the tracker stays trivially testable.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime

from apiwatch.analysis.status import consecutive_failures, derive_status
from apiwatch.domain import ProbeResult, ProviderState, Status, StatusChange, utcnow


class _Entry:
    __slots__ = ("changed_at", "reason", "results", "status")

    def __init__(self, window: int) -> None:
        self.results: deque[ProbeResult] = deque(maxlen=window)
        self.status = Status.UNKNOWN
        self.reason = "no results yet"
        self.changed_at: datetime | None = None


class StatusTracker:
    def __init__(
        self,
        providers: Iterable[str],
        *,
        window: int = 20,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._window = window
        self._clock = clock
        self._entries = {provider: _Entry(window) for provider in providers}

    def restore(self, provider: str, *, status: Status, reason: str, at: datetime) -> None:
        """Start from the last stored status after a restart (results come in afresh)."""
        entry = self._entries.setdefault(provider, _Entry(self._window))
        entry.status, entry.reason, entry.changed_at = status, reason, at

    def observe(self, result: ProbeResult, *, breaker_open: bool = False) -> StatusChange | None:
        entry = self._entries.setdefault(result.provider, _Entry(self._window))
        entry.results.append(result)
        status, reason = derive_status(entry.results, breaker_open=breaker_open)
        entry.reason = reason
        if status is entry.status:
            return None
        change = StatusChange(
            provider=result.provider, old=entry.status, new=status, reason=reason, at=self._clock()
        )
        entry.status, entry.changed_at = status, change.at
        return change

    def state(self, provider: str) -> ProviderState:
        entry = self._entries.get(provider) or _Entry(self._window)
        evidence = list(entry.results)
        return ProviderState(
            provider=provider,
            status=entry.status,
            reason=entry.reason,
            consecutive_failures=consecutive_failures(evidence),
            last_result=evidence[-1] if evidence else None,
            changed_at=entry.changed_at,
        )

    def states(self) -> dict[str, ProviderState]:
        return {provider: self.state(provider) for provider in self._entries}
