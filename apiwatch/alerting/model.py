"""The shapes alerting passes around: one alert as a channel sees it, and one notification.

Rules produce `AlertNotice`s; the policy (dedup, grouping, silences, acknowledge) decides
which reach a channel and batches them into `Notification`s; channels render and send a
`Notification`. Every decision carries a named reason (docs/alerting.md), listed in
`DecisionReason`, which is stored with the alert and shown to users.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from apiwatch.domain import Severity


class AlertState(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class DecisionReason(StrEnum):
    """Why an alert was sent or held back."""

    FIRST_NOTIFICATION = "first_notification"
    NEW_ALERTS_IN_GROUP = "new_alerts_in_group"
    REPEAT_INTERVAL_ELAPSED = "repeat_interval_elapsed"
    DUPLICATE_WITHIN_WINDOW = "duplicate_within_window"
    ACKNOWLEDGED = "acknowledged"
    SILENCED = "silenced"
    MAINTENANCE = "maintenance"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class AlertNotice:
    """One alert, firing or resolved, as the policy and the channels see it."""

    rule: str
    severity: Severity
    state: AlertState
    message: str
    fired_at: datetime
    # Same rule + provider + severity (+ item, for per-item rules) = same alert (dedup).
    fingerprint: str
    provider: str | None = None
    category: str | None = None
    alert_id: int | None = None
    resolved_at: datetime | None = None
    suggested_action: str | None = None
    labels: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AlertChanged:
    """An alert row fired, was acknowledged or resolved: what the live feed shows."""

    id: int
    rule: str
    severity: str
    provider: str | None
    state: str  # "firing", "acknowledged" or "resolved"
    message: str
    at: datetime


@dataclass(frozen=True)
class Notification:
    """One message to deliver: a group of alerts of one provider and severity."""

    group_key: str
    severity: Severity
    state: AlertState
    alerts: tuple[AlertNotice, ...]
    reason: DecisionReason
    title: str
    provider: str | None = None
    category: str | None = None
    # The triage's incident report (rule-based, or the LLM's when it answered in time).
    report: str | None = None

    @property
    def dedup_key(self) -> str:
        """Stable per group, so a resolve closes the incident it opened (PagerDuty)."""
        return self.group_key
