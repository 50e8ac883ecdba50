"""Slack through an incoming webhook: `text` (the notification's fallback line) plus Block
Kit `blocks` (header, facts, context) and one coloured attachment holding the alerts and the
report, since only attachments carry the severity colour bar.

Slack answers 200 `ok`; its documented failures are 400 `invalid_payload`/`user_not_found`,
403 `action_prohibited`, 403/404 `no_service` (webhook revoked or URL wrong), 404
`channel_not_found`, 410 `channel_is_archived` (all permanent), 429 with Retry-After and
500 `rollup_error` (retryable). Block limits respected here: 50 blocks, 150 characters in a
header, 3,000 in a section, 10 fields.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field, field_validator

from apiwatch.alerting.channels.base import ChannelConfig, DeliveryError, http_url
from apiwatch.alerting.channels.http import post
from apiwatch.alerting.channels.redact import Redactor
from apiwatch.alerting.channels.render import summary
from apiwatch.alerting.model import AlertNotice, AlertState, Notification
from apiwatch.domain import Severity

KIND = "slack"
HEADER_MAX = 150
SECTION_MAX = 3000
# The top-level blocks take 3; Slack allows 50 per message.
ATTACHMENT_BLOCKS_MAX = 45

EMOJI = {
    Severity.CRITICAL: ":red_circle:",
    Severity.WARNING: ":warning:",
    Severity.INFO: ":information_source:",
}
RESOLVED_EMOJI = ":white_check_mark:"
COLOUR = {Severity.CRITICAL: "#d7263d", Severity.WARNING: "#f4a259", Severity.INFO: "#3b82f6"}
RESOLVED_COLOUR = "#2eb67d"

# What Slack's error strings mean, for the person reading the delivery log.
HINTS = {
    "invalid_payload": "Slack could not parse the message",
    "no_service": "the webhook was revoked or the URL is wrong",
    "channel_not_found": "the webhook's channel no longer exists",
    "channel_is_archived": "the webhook's channel is archived",
    "action_prohibited": "the workspace forbids this webhook from posting",
    "no_team": "the workspace no longer exists",
    "rollup_error": "Slack had an internal error",
}


class SlackConfig(ChannelConfig):
    # repr=False: the webhook URL's path is its token.
    url: str = Field(repr=False)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return http_url(value)


def escape(text: str) -> str:
    """Slack's mrkdwn escaping: only &, < and > are control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _alert_text(alert: AlertNotice) -> str:
    where = f" *{escape(alert.provider)}*" if alert.provider else ""
    text = f"• `{escape(alert.rule)}`{where}: {escape(alert.message)}"
    if alert.state is AlertState.RESOLVED:
        text += " _(resolved)_"
    if alert.suggested_action:
        text += f"\n      _Suggested action:_ {escape(alert.suggested_action)}"
    return text


def _sections(lines: list[str], *, limit: int) -> list[dict[str, Any]]:
    """Lines packed into as few ≤3,000-character sections as fit, at most `limit` sections."""
    chunks: list[str] = []
    for line in lines:
        line = _cut(line, SECTION_MAX)
        if chunks and len(chunks[-1]) + 1 + len(line) <= SECTION_MAX:
            chunks[-1] += "\n" + line
        else:
            chunks.append(line)
    if len(chunks) > limit:
        dropped = len(chunks) - limit + 1
        chunks = [*chunks[: limit - 1], f"_… {dropped} more sections of alerts not shown_"]
    return [{"type": "section", "text": {"type": "mrkdwn", "text": c}} for c in chunks]


def render(notification: Notification) -> dict[str, Any]:
    """The Slack message for a notification."""
    resolved = notification.state is AlertState.RESOLVED
    emoji = RESOLVED_EMOJI if resolved else EMOJI[notification.severity]
    colour = RESOLVED_COLOUR if resolved else COLOUR[notification.severity]
    text = f"{emoji} {escape(summary(notification))}"
    state = "Resolved" if resolved else "Firing"
    facts = [
        ("Severity", notification.severity.value.capitalize()),
        ("State", state),
        ("Why sent", notification.reason.value.replace("_", " ")),
    ]
    if notification.provider:
        facts.append(("Provider", notification.provider))
    if notification.category:
        facts.append(("Category", notification.category))
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": _cut(f"{emoji} {state}: {notification.title}", HEADER_MAX),
                "emoji": True,
            },
        },
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*{label}*\n{escape(value)}"}
                for label, value in facts[:10]
            ],
        },
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": f"apiwatch · group `{escape(notification.group_key)}`"}
            ],
        },
    ]
    report_blocks = []
    if notification.report:
        report = _cut(f"*Report*\n{escape(notification.report)}", SECTION_MAX)
        report_blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": report}}]
    lines = [f"*Alerts ({len(notification.alerts)})*"]
    lines += [_alert_text(alert) for alert in notification.alerts]
    detail = _sections(lines, limit=ATTACHMENT_BLOCKS_MAX - len(report_blocks)) + report_blocks
    return {
        "text": text,
        "blocks": blocks,
        "attachments": [{"color": colour, "fallback": text, "blocks": detail}],
    }


class SlackChannel:
    kind = KIND

    def __init__(self, config: SlackConfig) -> None:
        self.config = config
        self.name = config.name or KIND
        self._redact = Redactor()
        self._redact.add_url(config.url)

    def __repr__(self) -> str:
        return f"SlackChannel(name={self.name!r})"

    async def send(self, notification: Notification) -> None:
        body = json.dumps(render(notification)).encode()
        try:
            await post(
                url=self.config.url,
                body=body,
                headers={"Content-Type": "application/json"},
                timeout_s=self.config.timeout_s,
                redact=self._redact,
                what=f"slack {self.name!r}",
            )
        except DeliveryError as error:
            hint = next((h for code, h in HINTS.items() if code in error.message), None)
            if hint is None:
                raise
            raise DeliveryError(
                f"{error.message} ({hint})",
                retryable=error.retryable,
                status=error.status,
                retry_after_s=error.retry_after_s,
            ) from None


def build(config: dict[str, Any]) -> SlackChannel:
    return SlackChannel(SlackConfig.model_validate(config))
