"""Alerts, silences and settings as stored rows and back: the conversions the manager and
its API questions share."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from apiwatch.alerting.model import AlertNotice, AlertState, Notification
from apiwatch.alerting.silences import Silence
from apiwatch.domain import Severity

SETTINGS_NAME = "alerts"


def silence_from_row(row: Mapping[str, Any]) -> Silence:
    return Silence(
        id=row["id"],
        matchers=dict(row["matchers"]),
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        created_by=row["created_by"],
        comment=row.get("comment", ""),
    )


def notice_from_row(row: Mapping[str, Any]) -> AlertNotice:
    return AlertNotice(
        rule=row["rule"],
        severity=Severity(row["severity"]),
        state=AlertState(row["state"])
        if row["state"] in ("firing", "resolved")
        else AlertState.FIRING,
        message=row["message"],
        fired_at=row["fired_at"],
        fingerprint=row["fingerprint"],
        provider=row["provider"],
        category=row["category"],
        alert_id=row["id"],
        resolved_at=row["resolved_at"],
        suggested_action=row["suggested_action"],
        labels=dict(row["labels"] or {}),
    )


def with_report(notification: Notification, report: str) -> Notification:
    return replace(notification, report=report)


def jsonable(labels: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: v.isoformat()
        if isinstance(v, datetime)
        else v
        if isinstance(v, str | int | float | bool | type(None) | list | dict)
        else str(v)
        for k, v in labels.items()
    }


def deep_merge(base: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in patch.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out
