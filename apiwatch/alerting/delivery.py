"""Delivering one notification to its channels: all at once, each with its own retries.

Every channel is tried concurrently, so a slow or dead channel delays nobody else. A
retryable `DeliveryError` is tried again after 1 s, 2 s, 4 s… (capped at 60 s, at least the
server's Retry-After, also capped: a notification that waits longer is late anyway), up to
4 attempts; a permanent one is not. Each channel ends in one `DeliveryOutcome`, delivered
or not, which goes to `on_outcome` (the caller stores it: a failed delivery is recorded,
never lost silently) and to the log. `deliver` never raises, except for cancellation.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from apiwatch.alerting.channels.base import Channel, DeliveryError
from apiwatch.alerting.channels.redact import scrub_urls
from apiwatch.alerting.model import Notification
from apiwatch.domain import utcnow

log = structlog.get_logger("apiwatch.alerting")

Sleep = Callable[[float], Awaitable[Any]]
OnOutcome = Callable[[Notification, "DeliveryOutcome"], Awaitable[None] | None]


@dataclass(frozen=True)
class DeliveryOutcome:
    """How one notification fared on one channel."""

    channel: str
    kind: str
    delivered: bool
    attempts: int
    # The last failure, redacted; None when delivered.
    error: str | None
    # Whether that last failure was worth retrying (None when delivered).
    retryable: bool | None
    at: datetime


class Deliverer:
    def __init__(
        self,
        *,
        sleep: Sleep | None = None,
        clock: Callable[[], datetime] = utcnow,
        on_outcome: OnOutcome | None = None,
        max_attempts: int = 4,
        initial_backoff_s: float = 1.0,
        backoff_factor: float = 2.0,
        max_backoff_s: float = 60.0,
        attempt_timeout_s: float | None = 120.0,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._sleep: Sleep = sleep or asyncio.sleep
        self._clock = clock
        self.on_outcome = on_outcome
        self.max_attempts = max_attempts
        self.initial_backoff_s = initial_backoff_s
        self.backoff_factor = backoff_factor
        self.max_backoff_s = max_backoff_s
        # A guard against a channel that hangs despite its own timeout.
        self.attempt_timeout_s = attempt_timeout_s

    def backoff(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        delay = self.initial_backoff_s * self.backoff_factor ** (attempt - 1)
        if retry_after_s is not None:
            delay = max(delay, retry_after_s)
        return min(delay, self.max_backoff_s)

    async def deliver(
        self, notification: Notification, channels: Sequence[Channel]
    ) -> list[DeliveryOutcome]:
        """Send to every channel concurrently; one outcome per channel, in channel order."""
        return list(await asyncio.gather(*(self._one(notification, c) for c in channels)))

    async def _attempt(self, notification: Notification, channel: Channel) -> None:
        if self.attempt_timeout_s is None:
            await channel.send(notification)
            return
        try:
            async with asyncio.timeout(self.attempt_timeout_s):
                await channel.send(notification)
        except TimeoutError:
            raise DeliveryError(
                f"{channel.kind} {channel.name!r}: no result within {self.attempt_timeout_s:g} s",
                retryable=True,
            ) from None

    async def _one(self, notification: Notification, channel: Channel) -> DeliveryOutcome:
        name, kind = _label(channel)
        context = {
            "channel": name,
            "kind": kind,
            "group": notification.group_key,
            "severity": notification.severity.value,
            "state": notification.state.value,
        }
        attempt = 0
        error: DeliveryError | None = None
        while attempt < self.max_attempts:
            attempt += 1
            try:
                await self._attempt(notification, channel)
            except DeliveryError as failure:
                error = failure
            except Exception as bug:
                # A channel bug, not a delivery verdict: no retry would fix it. Only the
                # type and a URL-scrubbed message: arbitrary exceptions are not redacted.
                error = DeliveryError(
                    f"{kind} {name!r}: unexpected {type(bug).__name__}: "
                    f"{scrub_urls(str(bug))[:300]}",
                    retryable=False,
                )
            else:
                error = None
                break
            if not error.retryable or attempt >= self.max_attempts:
                break
            delay = self.backoff(attempt, error.retry_after_s)
            log.warning(
                "notification_delivery_retry",
                **context,
                attempt=attempt,
                delay_s=round(delay, 3),
                status=error.status,
                error=error.message,
            )
            await self._sleep(delay)
        outcome = DeliveryOutcome(
            channel=name,
            kind=kind,
            delivered=error is None,
            attempts=attempt,
            error=None if error is None else error.message,
            retryable=None if error is None else error.retryable,
            at=self._clock(),
        )
        if error is None:
            log.info("notification_delivered", **context, attempts=attempt)
        else:
            log.error(
                "notification_delivery_failed",
                **context,
                attempts=attempt,
                retryable=error.retryable,
                status=error.status,
                error=error.message,
            )
        await self._report(notification, outcome)
        return outcome

    async def _report(self, notification: Notification, outcome: DeliveryOutcome) -> None:
        if self.on_outcome is None:
            return
        try:
            result = self.on_outcome(notification, outcome)
            if inspect.isawaitable(result):
                await result
        except Exception as error:
            # The outcome is still returned to the caller; losing the callback is logged.
            log.error(
                "notification_outcome_callback_failed",
                channel=outcome.channel,
                error=f"{type(error).__name__}: {scrub_urls(str(error))[:300]}",
            )


def _label(channel: Channel) -> tuple[str, str]:
    kind = str(getattr(channel, "kind", type(channel).__name__))
    return str(getattr(channel, "name", kind)), kind
