"""The Slack channel: the incoming-webhook message format and Slack's error answers."""

from __future__ import annotations

import pytest

from apiwatch.alerting.channels import DeliveryError, build_channel
from apiwatch.alerting.channels.slack import COLOUR, RESOLVED_COLOUR, render
from apiwatch.alerting.model import AlertState
from apiwatch.domain import Severity
from tests.alerting.channels.receivers import HttpReceiver, Reply, notification

TOKEN = "slackTOKEN0123456789abcd"
PATH = f"/services/T0001/B0001/{TOKEN}"


def slack(http: HttpReceiver) -> object:
    return build_channel("slack", "ops-slack", {"kind": "slack", "url": http.url(PATH)})


async def test_message_has_fallback_text_blocks_and_severity_colour(
    http_receiver: HttpReceiver,
) -> None:
    sent = notification(severity=Severity.WARNING)
    await slack(http_receiver).send(sent)  # type: ignore[attr-defined]

    body = http_receiver.at(PATH)[0].json()
    assert body["text"].startswith(":warning: [WARNING]") and sent.title in body["text"]
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "context"]
    assert body["blocks"][0]["text"]["type"] == "plain_text"
    fields = " ".join(f["text"] for f in body["blocks"][1]["fields"])
    assert "*Severity*\nWarning" in fields and "*Provider*\ncoingecko" in fields
    [attachment] = body["attachments"]
    assert attachment["color"] == COLOUR[Severity.WARNING]
    detail = " ".join(b["text"]["text"] for b in attachment["blocks"])
    assert "`status_offline`" in detail and "*Report*" in detail


def test_resolved_message_is_green_with_a_check_mark() -> None:
    message = render(notification(state=AlertState.RESOLVED))
    assert message["text"].startswith(":white_check_mark: [RESOLVED]")
    assert message["attachments"][0]["color"] == RESOLVED_COLOUR
    assert message["blocks"][0]["text"]["text"].startswith(":white_check_mark: Resolved:")


def test_mrkdwn_control_characters_are_escaped() -> None:
    detail = render(notification())["attachments"][0]["blocks"][0]["text"]["text"]
    assert "&lt;server_error&gt; &amp; more" in detail
    assert "<server_error>" not in detail


def test_a_large_group_stays_within_slack_block_limits() -> None:
    big = notification(alerts=50, report="r" * 5000)
    big = type(big)(**{**big.__dict__, "title": "t" * 400})
    alerts = tuple(
        type(a)(**{**a.__dict__, "message": f"{i} " + "m" * 1500}) for i, a in enumerate(big.alerts)
    )
    message = render(type(big)(**{**big.__dict__, "alerts": alerts}))

    blocks = message["blocks"] + message["attachments"][0]["blocks"]
    assert len(blocks) <= 50
    assert len(message["blocks"][0]["text"]["text"]) <= 150
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section" and "text" in b]
    assert all(len(text) <= 3000 for text in sections)
    # Every alert is either shown or counted as not shown.
    shown = sum(text.count("• `") for text in sections)
    assert shown == 50 or "more sections of alerts not shown" in sections[-2]


@pytest.mark.parametrize(
    ("status", "answer", "hint"),
    [
        (404, "no_service", "revoked"),
        (403, "action_prohibited", "forbids"),
        (400, "invalid_payload", "could not parse"),
        (410, "channel_is_archived", "archived"),
    ],
)
async def test_slack_errors_are_permanent_and_explained(
    status: int, answer: str, hint: str, http_receiver: HttpReceiver
) -> None:
    http_receiver.script(PATH, Reply(status=status, body=answer))

    with pytest.raises(DeliveryError) as raised:
        await slack(http_receiver).send(notification())  # type: ignore[attr-defined]

    assert raised.value.retryable is False and raised.value.status == status
    assert answer in str(raised.value) and hint in str(raised.value)
    assert TOKEN not in str(raised.value) and TOKEN not in repr(raised.value)


async def test_rollup_error_500_is_retryable(http_receiver: HttpReceiver) -> None:
    http_receiver.script(PATH, Reply(status=500, body="rollup_error"))

    with pytest.raises(DeliveryError) as raised:
        await slack(http_receiver).send(notification())  # type: ignore[attr-defined]

    assert raised.value.retryable is True and "internal error" in str(raised.value)


def test_config_repr_hides_the_webhook_url() -> None:
    channel = build_channel("slack", "ops", {"url": f"https://hooks.example{PATH}"})
    assert TOKEN not in repr(channel) and TOKEN not in repr(channel.config)  # type: ignore[attr-defined]
