"""Retry policy by outcome (DESIGN.md §3).

Only "again now" retries happen inside one probe run: a timeout or connection error is tried
again at once, with the timeout raised 50 %, at most 3 tries in all. The delayed retries
(rate_limited after the reset, server_error with backoff) are scheduled, never slept on.
"""

from __future__ import annotations

from dataclasses import dataclass

from apiwatch.domain import Outcome

IMMEDIATE_RETRY = frozenset({Outcome.TIMEOUT, Outcome.CONNECTION_ERROR})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 3
    timeout_factor: float = 1.5

    def retry_now(self, outcome: Outcome, attempt: int) -> bool:
        return outcome in IMMEDIATE_RETRY and attempt < self.max_attempts

    def next_timeout(self, timeout_s: float) -> float:
        return timeout_s * self.timeout_factor


NO_RETRY = RetryPolicy(max_attempts=1)
