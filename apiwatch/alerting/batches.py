"""What the alert policy hands around: a decision with its reason, an active alert as the
policy tracks it, a batch of notices waiting to go out, and how a batch is titled."""

from dataclasses import dataclass, field
from datetime import datetime

from apiwatch.alerting.model import AlertNotice, AlertState, DecisionReason
from apiwatch.domain import Severity


@dataclass(frozen=True, slots=True)
class Decision:
    send: bool
    reason: DecisionReason
    group_key: str


@dataclass
class ActiveAlert:
    """A firing alert as the policy tracks it."""

    notice: AlertNotice
    first_seen: datetime
    reason: DecisionReason
    sent_at: datetime | None = None  # last time it went out in a notification
    notifications: int = 0
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    silenced_by: int | None = None
    maintenance_id: str | None = None  # the window holding it back, when one does
    queued: bool = False

    @property
    def fingerprint(self) -> str:
        return self.notice.fingerprint


@dataclass(frozen=True, slots=True)
class PendingBatch:
    group_key: str
    state: AlertState
    severity: Severity
    provider: str | None
    size: int
    opened_at: datetime
    due_at: datetime


@dataclass
class Batch:
    group_key: str
    state: AlertState
    severity: Severity
    provider: str | None
    category: str | None
    opened_at: datetime
    reason: DecisionReason
    alerts: dict[str, AlertNotice] = field(default_factory=dict)  # by fingerprint, in order
    repeats: set[str] = field(default_factory=set)


def group_key(notice: AlertNotice) -> str:
    """Provider (or, for alerts without one, their category) and severity: the same for a
    group's firing and resolved notifications, so a resolve closes what the firing opened."""
    return f"{notice.provider or notice.category or 'apiwatch'}:{notice.severity.value}"


def batch_title(
    batch: Batch, alerts: tuple[AlertNotice, ...], more: int, reason: DecisionReason
) -> str:
    who = batch.provider or batch.category or "apiwatch"
    severity = batch.severity.value
    if len(alerts) == 1 and not more:
        title = f"{who}: {severity} {alerts[0].rule}"
    else:
        title = f"{who}: {len(alerts) + more} {severity} alerts"
    if batch.state is AlertState.RESOLVED:
        title += " resolved"
    elif reason is DecisionReason.REPEAT_INTERVAL_ELAPSED:
        title += " (still firing)"
    if more:
        title += f" ({more} more to follow)"
    return title
