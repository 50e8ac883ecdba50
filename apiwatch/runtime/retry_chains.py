"""Scheduled retries of failed checks (docs/concepts.md), and how each chain of tries ended.

Never a sleeping worker: a retry is a timer (`loop.call_later`, or an injected `defer` in
tests) that runs the probe again with the next attempt number. When a chain ends, by
recovering, by giving up or by not being sent, one `failure_logs` row says how.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from apiwatch.domain import Outcome, ProbeResult
from apiwatch.probe.retry import RetryPolicy

log = structlog.get_logger("apiwatch.retries")


@dataclass
class _Chain:
    """A check that failed and is being retried: its first and latest results."""

    first: ProbeResult
    last: ProbeResult | None = None


class _NoTimer:
    def cancel(self) -> None:
        return None


_NO_TIMER: asyncio.TimerHandle = _NoTimer()  # type: ignore[assignment]


def _failed(result: ProbeResult) -> bool:
    return result.outcome.is_failure or result.outcome is Outcome.RATE_LIMITED


class RetryChains:
    def __init__(
        self,
        *,
        probe: Callable[[str, str, int], Awaitable[ProbeResult]],
        record: Callable[[Any], None],
        policy: RetryPolicy,
        window_reset_in: Callable[[str], float | None] = lambda provider: None,
    ) -> None:
        """`window_reset_in(provider)`: seconds until the provider's shortest rate-limit
        window resets, the wait for a rate limit that came without a Retry-After."""
        self._window_reset_in = window_reset_in
        self._probe = probe
        self._record = record
        self._policy = policy
        # When a retry is due: `defer(delay_s, job)`; tests inject their own clock here.
        self.defer: Callable[[float, Callable[[], Awaitable[None]]], None] | None = None
        self._chains: dict[tuple[str, str], _Chain] = {}
        self._timers: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._job_failures = 0
        self._failure_logged_at = float("-inf")

    def follow_up(self, result: ProbeResult, *, first: ProbeResult | None = None) -> None:
        """Schedule the next try of a failed check, or close its retry chain in failure_logs.

        `first` is the check's first attempt when it was retried at once: the chain starts
        there, so its first outcome and time are the check's, not its last attempt's.
        """
        key = (result.provider, result.endpoint)
        chain = self._chains.get(key)
        if chain is None and first is not None and first is not result and _failed(first):
            chain = self._chains[key] = _Chain(first=first)
        failed = _failed(result)
        if not failed:
            if chain is not None:
                ended = "recovered" if result.outcome.is_success else "not probed"
                self._close_chain(key, result, f"{ended}: {result.reason or result.outcome}")
            return
        if chain is None:
            chain = self._chains[key] = _Chain(first=result)
        chain.last = result
        if key in self._timers:
            return  # a retry is already due; this result came from a scheduled check
        delay = self._policy.delay_before_retry(
            result.outcome,
            result.attempt,
            retry_after_s=result.retry_after_s,
            window_reset_in_s=self._window_reset_in(result.provider),
        )
        if delay is None:
            self._close_chain(
                key, result, f"gave up after attempt {result.attempt}: {result.reason}"
            )
            return
        log.info(
            "retry_scheduled",
            provider=key[0],
            endpoint=key[1],
            in_s=delay,
            attempt=result.attempt + 1,
            outcome=result.outcome.value,
        )
        self._schedule(key, delay, result.attempt + 1)

    def _schedule(self, key: tuple[str, str], delay: float, attempt: int) -> None:
        async def run() -> None:
            # The key stays marked while the retry is in flight, so a scheduled check that
            # fails meanwhile only updates the chain instead of scheduling a second retry.
            result = await self._probe(key[0], key[1], attempt)
            self._timers.pop(key, None)
            self.follow_up(result)

        if self.defer is not None:
            self._timers[key] = _NO_TIMER
            self.defer(delay, run)
            return
        loop = asyncio.get_running_loop()
        self._timers[key] = loop.call_later(delay, self.spawn, run)

    def spawn(self, job: Callable[[], Awaitable[None]]) -> None:
        task = asyncio.ensure_future(job())
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Future[None]) -> None:
        # A background job's failure (e.g. saving breakers while the database is locked or
        # away) is logged, not left to "Task exception was never retrieved".
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            # Once, then once a minute with how many more (a database outage fails them all).
            self._job_failures += 1
            now = time.monotonic()
            if now - self._failure_logged_at >= 60.0:
                self._failure_logged_at = now
                log.warning(
                    "background_job_failed", failures=self._job_failures, error=repr(error)[:300]
                )
                self._job_failures = 0

    def _close_chain(self, key: tuple[str, str], last: ProbeResult, reason: str) -> None:
        chain = self._chains.pop(key, None)
        # A check that recovered while a retry was pending: that retry is no longer wanted.
        self._timers.pop(key, _NO_TIMER).cancel()
        if chain is None:
            return
        self._record(
            (
                "failure_logs",
                {
                    "provider": key[0],
                    "endpoint": key[1],
                    "outcome": chain.first.outcome.value,
                    "attempts": last.attempt,
                    "final_outcome": last.outcome.value,
                    "reason": reason[:1000],
                    "first_at": chain.first.started_at,
                    "last_at": last.started_at,
                },
            )
        )

    def drop(self, provider: str) -> None:
        """Forget a removed provider's chains: its pending retries are not sent."""
        for key in [k for k in self._timers if k[0] == provider]:
            self._timers.pop(key).cancel()
        for key in [k for k in self._chains if k[0] == provider]:
            del self._chains[key]

    async def cancel(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
