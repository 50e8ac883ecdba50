"""PagerDuty through the Events API v2 (`POST /v2/enqueue`).

A firing notification is a `trigger`, a resolved one a `resolve`, both with
`dedup_key` = the notification's dedup key, so the resolve closes the incident the trigger
opened and repeats of a firing group update it rather than open another. PagerDuty answers
202 when it accepted the event; 400 (invalid event) is permanent; 429 and 5xx are worth a
retry (PagerDuty's own advice). The routing key is a secret: it is in the body only.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import Field, SecretStr, field_validator

from apiwatch.alerting.channels.base import ChannelConfig, http_url
from apiwatch.alerting.channels.http import post
from apiwatch.alerting.channels.redact import Redactor
from apiwatch.alerting.channels.render import alert_document, summary
from apiwatch.alerting.model import AlertState, Notification
from apiwatch.domain import Severity

KIND = "pagerduty"
DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"
SUMMARY_MAX = 1024
DEDUP_KEY_MAX = 255
# PagerDuty's severities are critical/error/warning/info; ours map onto three of them.
PD_SEVERITY = {Severity.CRITICAL: "critical", Severity.WARNING: "warning", Severity.INFO: "info"}


class PagerDutyConfig(ChannelConfig):
    routing_key: SecretStr
    url: str = Field(default=DEFAULT_URL, repr=False)
    source: str = Field(default="apiwatch", min_length=1, max_length=255)
    client: str = "apiwatch"
    client_url: str | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return http_url(value)

    @field_validator("routing_key")
    @classmethod
    def _key(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value


def dedup_key(notification: Notification) -> str:
    """The notification's dedup key, hashed only if longer than PagerDuty's 255 characters."""
    key = notification.dedup_key
    if len(key) <= DEDUP_KEY_MAX:
        return key
    return "apiwatch-" + hashlib.sha256(key.encode()).hexdigest()


def render(notification: Notification, config: PagerDutyConfig) -> dict[str, Any]:
    """The Events API v2 body (routing key included)."""
    event: dict[str, Any] = {
        "routing_key": config.routing_key.get_secret_value(),
        "dedup_key": dedup_key(notification),
    }
    if notification.state is AlertState.RESOLVED:
        # A resolve needs only the key; PagerDuty ignores a payload on it.
        event["event_action"] = "resolve"
        return event
    first = min((a.fired_at for a in notification.alerts), default=None)
    rules = sorted({a.rule for a in notification.alerts})
    payload: dict[str, Any] = {
        "summary": summary(notification)[:SUMMARY_MAX],
        "source": notification.provider or config.source,
        "severity": PD_SEVERITY[notification.severity],
        "custom_details": {
            "title": notification.title,
            "state": notification.state.value,
            "reason": notification.reason.value,
            "group_key": notification.group_key,
            "report": notification.report,
            "alerts": [alert_document(a) for a in notification.alerts],
        },
    }
    if first is not None:
        payload["timestamp"] = first.isoformat()
    if notification.provider:
        payload["component"] = notification.provider
    if notification.category:
        payload["group"] = notification.category
    if rules:
        payload["class"] = ", ".join(rules)
    event.update(event_action="trigger", payload=payload, client=config.client)
    if config.client_url:
        event["client_url"] = config.client_url
    return event


class PagerDutyChannel:
    kind = KIND

    def __init__(self, config: PagerDutyConfig) -> None:
        self.config = config
        self.name = config.name or KIND
        self._redact = Redactor([config.routing_key.get_secret_value()])
        self._redact.add_url(config.url)

    def __repr__(self) -> str:
        return f"PagerDutyChannel(name={self.name!r})"

    async def send(self, notification: Notification) -> None:
        body = json.dumps(render(notification, self.config)).encode()
        await post(
            url=self.config.url,
            body=body,
            headers={"Content-Type": "application/json"},
            timeout_s=self.config.timeout_s,
            redact=self._redact,
            what=f"pagerduty {self.name!r}",
        )


def build(config: dict[str, Any]) -> PagerDutyChannel:
    return PagerDutyChannel(PagerDutyConfig.model_validate(config))
