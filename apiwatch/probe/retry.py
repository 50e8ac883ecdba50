"""Retry policy by outcome (docs/concepts.md, "Retries").

Two kinds of retry:
- "again now", inside one probe run: a timeout or connection error is tried again at once,
  with the timeout raised 50 %, at most 3 tries in all (`retry_now`, `next_timeout`).
- scheduled: a rate-limited probe waits for the reset + 10 s; a server error backs off 1, 2,
  4 min…, at most 5 tries in all (`delay_before_retry`). The caller schedules the retry at
  that delay; nothing sleeps on it.

auth_error and client_error are never retried (repeating them cannot help and may get a key
or an IP banned); invalid_payload waits for the endpoint's next scheduled run.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import isfinite

from apiwatch.domain import Outcome

IMMEDIATE_RETRY = frozenset({Outcome.TIMEOUT, Outcome.CONNECTION_ERROR})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how soon each outcome is tried again.

    `attempt` is always the number (from 1) of the attempt that produced the outcome.
    """

    # Immediate retries of timeout / connection_error.
    max_attempts: int = 3
    timeout_factor: float = 1.5
    # rate_limited: wait for the reset, plus a margin because provider clocks and ours
    # disagree by seconds and arriving early earns another 429 (Binance escalates to 418).
    rate_limit_margin_s: float = 10.0
    # When the provider gave no Retry-After and no window reset is known; most limits are
    # per minute, so a minute is the cheapest guess that is rarely early.
    rate_limit_fallback_s: float = 60.0
    # None: no cap; each retry still passes the budget gate, so this cannot exceed limits.
    rate_limited_max_attempts: int | None = None
    # server_error: exponential backoff.
    backoff_base_s: float = 60.0
    backoff_factor: float = 2.0
    server_error_max_attempts: int = 5

    def retry_now(self, outcome: Outcome, attempt: int) -> bool:
        return outcome in IMMEDIATE_RETRY and attempt < self.max_attempts

    def next_timeout(self, timeout_s: float) -> float:
        return timeout_s * self.timeout_factor

    def delay_before_retry(
        self,
        outcome: Outcome,
        attempt: int,
        *,
        retry_after_s: float | None = None,
        window_reset_in_s: float | None = None,
    ) -> float | None:
        """Seconds to wait before trying again after `outcome` on attempt `attempt`.

        None means no retry (give up, or wait for the next scheduled run); 0.0 means now.
        `retry_after_s` (the provider's Retry-After) wins over `window_reset_in_s` (our own
        budget window), since what the provider reports wins over what we counted.
        """
        if attempt < 1:
            raise ValueError("attempt counts from 1")
        if outcome in IMMEDIATE_RETRY:
            return 0.0 if self.retry_now(outcome, attempt) else None
        if outcome is Outcome.RATE_LIMITED:
            cap = self.rate_limited_max_attempts
            if cap is not None and attempt >= cap:
                return None
            reset = next(
                (s for s in (retry_after_s, window_reset_in_s) if s is not None and isfinite(s)),
                self.rate_limit_fallback_s,
            )
            return max(reset, 0.0) + self.rate_limit_margin_s
        if outcome is Outcome.SERVER_ERROR:
            if attempt >= self.server_error_max_attempts:
                return None
            return self.backoff_base_s * self.backoff_factor ** (attempt - 1)
        # ok, slow, skipped: nothing to retry. auth_error, client_error, invalid_payload: see
        # the module docstring.
        return None


# Engine default: one attempt, and nothing scheduled afterwards either.
NO_RETRY = RetryPolicy(max_attempts=1, rate_limited_max_attempts=1, server_error_max_attempts=1)
