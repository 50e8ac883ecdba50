"""Guard and data events (budget warnings, expired keys, breaker transitions, stale and
divergent data, failed book integrity checks, interval changes, TLS certificate readings):
published on the bus, stored as `events` rows, logged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime

import structlog

from apiwatch.domain import utcnow
from apiwatch.events import EventBus
from apiwatch.storage.recorder import Recorder

log = structlog.get_logger("apiwatch.runtime")


# Guard events by type, as stored in `events.kind` and shown by GET /api/events.
EVENT_KINDS = {
    "BudgetWarning": "rate_limit_warning",
    "BudgetBlocked": "rate_limit_window_full",
    "KeyExpired": "key_expired",
    "BreakerTransition": "breaker_transition",
    "DataStale": "data_stale",
    "DataDivergent": "data_divergent",
    "BookIntegrity": "book_integrity",
    "IntervalChanged": "schedule_interval_changed",
    "DependencyChange": "dependency_change",
    "CertificateSeen": "tls_certificate",
}


def announcer(
    bus: EventBus, recorder: Recorder, *, on_breaker: Callable[[str], None] = lambda provider: None
) -> Callable[[object], None]:
    """Publish a guard event (budget warning, expired key, breaker transition), store it as an
    `events` row and log it; a breaker transition also calls `on_breaker(provider)` to
    persist it."""

    def announce(event: object) -> None:
        bus.publish(event)
        as_dict = getattr(event, "as_dict", None)
        fields = as_dict() if callable(as_dict) else dataclasses.asdict(event)  # type: ignore[call-overload]
        kind = EVENT_KINDS.get(type(event).__name__, type(event).__name__)
        data = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in fields.items()}
        recorder.record(
            (
                "events",
                {"kind": kind, "provider": fields.get("provider"), "data": data, "at": utcnow()},
            )
        )
        log.info(kind, **{k: v for k, v in data.items() if k != "event"})
        if kind == "breaker_transition":
            on_breaker(data["provider"])

    return announce
