"""Rendering a notification for people and machines: one JSON-safe document (the webhook's
body, PagerDuty's details), a one-line summary, and plain-text and HTML bodies (email,
apprise). The channels that have their own formats (Slack blocks) start from these too, so
every channel says the same thing.
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

from apiwatch.alerting.model import AlertNotice, AlertState, Notification

SCHEMA_VERSION = 1


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def alert_document(alert: AlertNotice) -> dict[str, Any]:
    return {
        "alert_id": alert.alert_id,
        "rule": alert.rule,
        "severity": alert.severity.value,
        "state": alert.state.value,
        "message": alert.message,
        "provider": alert.provider,
        "category": alert.category,
        "fingerprint": alert.fingerprint,
        "fired_at": _iso(alert.fired_at),
        "resolved_at": _iso(alert.resolved_at),
        "suggested_action": alert.suggested_action,
        "labels": _json_safe(alert.labels),
    }


def notification_document(notification: Notification) -> dict[str, Any]:
    """The whole notification as JSON-safe data (the webhook body)."""
    return {
        "version": SCHEMA_VERSION,
        "source": "apiwatch",
        "group_key": notification.group_key,
        "dedup_key": notification.dedup_key,
        "title": notification.title,
        "severity": notification.severity.value,
        "state": notification.state.value,
        "reason": notification.reason.value,
        "provider": notification.provider,
        "category": notification.category,
        "report": notification.report,
        "alerts": [alert_document(alert) for alert in notification.alerts],
    }


def summary(notification: Notification) -> str:
    """One line: `[CRITICAL] coingecko offline (3 alerts)` or `[RESOLVED] …`."""
    count = len(notification.alerts)
    if notification.state is AlertState.RESOLVED:
        head = f"[RESOLVED] [{notification.severity.value.upper()}]"
    else:
        head = f"[{notification.severity.value.upper()}]"
    tail = f" ({count} alerts)" if count > 1 else ""
    return f"{head} {notification.title}{tail}"


def alert_line(alert: AlertNotice) -> str:
    where = f" {alert.provider}" if alert.provider else ""
    when = alert.resolved_at if alert.state is AlertState.RESOLVED else alert.fired_at
    return (
        f"[{alert.severity.value}] {alert.rule}{where}: {alert.message} "
        f"({alert.state.value} {_iso(when)})"
    )


def _facts(notification: Notification) -> list[tuple[str, str]]:
    facts = [
        ("Severity", notification.severity.value),
        ("State", notification.state.value),
        ("Reason", notification.reason.value),
    ]
    if notification.provider:
        facts.append(("Provider", notification.provider))
    if notification.category:
        facts.append(("Category", notification.category))
    return facts


def text_body(notification: Notification) -> str:
    lines = [summary(notification), ""]
    lines += [f"{label}: {value}" for label, value in _facts(notification)]
    lines += ["", f"Alerts ({len(notification.alerts)}):"]
    for alert in notification.alerts:
        lines.append(f"- {alert_line(alert)}")
        if alert.suggested_action:
            lines.append(f"  Suggested action: {alert.suggested_action}")
    if notification.report:
        lines += ["", "Report:", notification.report]
    lines += ["", f"-- apiwatch, group {notification.group_key}"]
    return "\n".join(lines) + "\n"


def html_body(notification: Notification) -> str:
    esc = html.escape
    facts = "".join(
        f"<tr><th align='left'>{esc(label)}</th><td>{esc(value)}</td></tr>"
        for label, value in _facts(notification)
    )
    items = []
    for alert in notification.alerts:
        action = (
            f"<br><em>Suggested action:</em> {esc(alert.suggested_action)}"
            if alert.suggested_action
            else ""
        )
        items.append(f"<li>{esc(alert_line(alert))}{action}</li>")
    report = f"<h3>Report</h3><pre>{esc(notification.report)}</pre>" if notification.report else ""
    return (
        f"<html><body><h2>{esc(summary(notification))}</h2>"
        f"<table>{facts}</table>"
        f"<h3>Alerts ({len(notification.alerts)})</h3><ul>{''.join(items)}</ul>"
        f"{report}<p><small>apiwatch, group {esc(notification.group_key)}</small></p>"
        "</body></html>"
    )
