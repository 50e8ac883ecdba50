"""The live feed's messages: which bus events become which message, and their JSON.

Every message is `{"type", "ts", "data"}` with `ts` in RFC 3339 UTC. A message is encoded
once, whatever the number of connections, and carries the provider it concerns (for the
`provider` filter) and whether it may be dropped for a slow client (only `new_log_entry`).
Nothing secret goes into one: attempts travel without their key label, payload or headers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from apiwatch.alerting.model import AlertChanged
from apiwatch.budget.decisions import BudgetBlocked, BudgetWarning
from apiwatch.domain import ProbeResult, StatusChange, utcnow

STATUS_UPDATE = "status_update"
NEW_LOG_ENTRY = "new_log_entry"
RATE_LIMIT_ALERT = "rate_limit_alert"
PROVIDER_STATUS_CHANGE = "provider_status_change"
ALERT = "alert"
PING = "ping"
# What a client may ask for with `types`.
TYPES = (STATUS_UPDATE, NEW_LOG_ENTRY, RATE_LIMIT_ALERT, PROVIDER_STATUS_CHANGE, ALERT, PING)
# Control messages, always delivered whatever the filter: how many were dropped, what the
# subscription now is, what was wrong with a client's message.
DROPPED = "dropped"
SUBSCRIBED = "subscribed"
ERROR = "error"


@dataclass(frozen=True, slots=True)
class Message:
    type: str
    provider: str | None
    text: str

    @property
    def droppable(self) -> bool:
        return self.type == NEW_LOG_ENTRY


def rfc3339(moment: datetime | None = None) -> str:
    """`2026-12-01T20:30:00.123Z`: UTC, milliseconds, the `Z` every client parses."""
    moment = (moment or utcnow()).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return rfc3339(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def message(
    kind: str,
    data: Mapping[str, Any],
    *,
    provider: str | None = None,
    ts: datetime | None = None,
) -> Message:
    text = json.dumps(
        {"type": kind, "ts": rfc3339(ts), "data": data}, default=_jsonable, separators=(",", ":")
    )
    return Message(kind, provider, text)


def log_entry(result: ProbeResult) -> dict[str, Any]:
    return {
        "provider": result.provider,
        "endpoint": result.endpoint,
        "outcome": result.outcome.value,
        "status_code": result.status_code,
        "latency_ms": None if result.latency_ms is None else round(result.latency_ms, 2),
        "attempt": result.attempt,
        "final": result.final,
        "reason": result.reason,
        "started_at": result.started_at,
        "location": result.location,
    }


def encode(event: object) -> Message | None:
    """The feed message for a bus event, or None for events the feed does not carry."""
    if isinstance(event, ProbeResult):
        return message(NEW_LOG_ENTRY, log_entry(event), provider=event.provider)
    if isinstance(event, StatusChange):
        data = {
            "provider": event.provider,
            "from": event.old.value,
            "to": event.new.value,
            "reason": event.reason,
            "at": event.at,
        }
        return message(PROVIDER_STATUS_CHANGE, data, provider=event.provider, ts=event.at)
    if isinstance(event, BudgetWarning | BudgetBlocked):
        level = "warning" if isinstance(event, BudgetWarning) else "blocked"
        data = {
            "provider": event.provider,
            "level": level,
            "window": event.window,
            "used": event.used,
            "limit": event.limit,
            "percent": round(100.0 * event.used / event.limit, 1) if event.limit else None,
            "reset_at": event.reset_at,
        }
        return message(RATE_LIMIT_ALERT, data, provider=event.provider)
    if isinstance(event, AlertChanged):
        data = {
            "id": event.id,
            "rule": event.rule,
            "severity": event.severity,
            "provider": event.provider,
            "state": event.state,
            "message": event.message,
            "at": event.at,
        }
        return message(ALERT, data, provider=event.provider, ts=event.at)
    return None
