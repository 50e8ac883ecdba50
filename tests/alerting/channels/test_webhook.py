"""The webhook channel: its JSON body, its HMAC signature scheme and its failure modes."""

from __future__ import annotations

import pytest

from apiwatch.alerting.channels import DeliveryError, build_channel
from apiwatch.alerting.channels.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookChannel,
    WebhookConfig,
    verify_signature,
)
from apiwatch.alerting.model import AlertState
from tests.alerting.channels.receivers import HttpReceiver, Reply, notification

SECRET = "whsec-0123456789abcdef"
NOW = 1_772_366_400.0


def signed_channel(http: HttpReceiver, **extra: object) -> WebhookChannel:
    config = WebhookConfig(name="hook", url=http.url("/hook"), secret=SECRET, **extra)  # type: ignore[arg-type]
    return WebhookChannel(config, clock=lambda: NOW)


async def test_signature_verifies_with_the_secret_over_timestamp_and_raw_body(
    http_receiver: HttpReceiver,
) -> None:
    await signed_channel(http_receiver).send(notification())

    [request] = http_receiver.requests
    timestamp, signature = request.headers[TIMESTAMP_HEADER], request.headers[SIGNATURE_HEADER]
    assert timestamp == str(int(NOW))
    assert signature.startswith("sha256=") and len(signature) == len("sha256=") + 64
    check = {"body": request.body, "timestamp": timestamp, "signature": signature, "now": NOW}
    assert verify_signature(secret=SECRET, **check)
    assert not verify_signature(secret="another-secret", **check)
    assert not verify_signature(secret=SECRET, **{**check, "body": request.body + b" "})
    # The timestamp is signed: moving it forward to pass a freshness check breaks the HMAC.
    later = str(int(NOW) + 600)
    assert not verify_signature(secret=SECRET, **{**check, "timestamp": later, "now": NOW + 600})


async def test_replayed_delivery_is_rejected_once_the_timestamp_is_stale(
    http_receiver: HttpReceiver,
) -> None:
    await signed_channel(http_receiver).send(notification())

    [request] = http_receiver.requests
    replay = {
        "secret": SECRET,
        "body": request.body,
        "timestamp": request.headers[TIMESTAMP_HEADER],
        "signature": request.headers[SIGNATURE_HEADER],
    }
    assert verify_signature(**replay, now=NOW + 299)
    assert not verify_signature(**replay, now=NOW + 301)


async def test_body_carries_the_group_and_every_alert_field(http_receiver: HttpReceiver) -> None:
    sent = notification(state=AlertState.RESOLVED)
    await signed_channel(http_receiver).send(sent)

    body = http_receiver.requests[0].json()
    assert body["group_key"] == sent.group_key == body["dedup_key"]
    assert (body["severity"], body["state"], body["reason"]) == ("critical", "resolved", "resolved")
    assert body["report"] == sent.report and body["title"] == sent.title
    first = body["alerts"][0]
    assert set(first) >= {"rule", "severity", "state", "message", "fired_at", "resolved_at",
                          "fingerprint", "provider", "category", "alert_id", "suggested_action",
                          "labels"}  # fmt: skip
    assert first["fired_at"] == sent.alerts[0].fired_at.isoformat()
    # Labels may hold datetimes; they arrive as ISO strings instead of breaking the send.
    assert first["labels"]["since"] == sent.alerts[0].labels["since"].isoformat()
    assert len(body["alerts"]) == len(sent.alerts)


async def test_custom_headers_are_sent_and_nothing_is_signed_without_a_secret(
    http_receiver: HttpReceiver,
) -> None:
    channel = build_channel(
        "webhook", "plain", {"url": http_receiver.url("/plain"), "headers": {"X-Team": "ops"}}
    )
    await channel.send(notification())

    headers = http_receiver.requests[0].headers
    assert headers["X-Team"] == "ops"
    assert headers["Content-Type"] == "application/json"
    assert SIGNATURE_HEADER not in headers and TIMESTAMP_HEADER not in headers


async def test_slow_receiver_times_out_as_a_retryable_failure(http_receiver: HttpReceiver) -> None:
    http_receiver.script("/slow", Reply(delay_s=2.0))
    channel = build_channel(
        "webhook", "slow", {"url": http_receiver.url("/slow"), "timeout_s": 0.2}
    )

    with pytest.raises(DeliveryError) as raised:
        await channel.send(notification())

    assert raised.value.retryable is True
    assert "0.2 s" in str(raised.value)


async def test_redirect_is_not_followed_and_is_permanent(http_receiver: HttpReceiver) -> None:
    http_receiver.script("/moved", Reply(status=302, body="", headers={"Location": "/elsewhere"}))
    channel = build_channel(
        "webhook", "moved", {"url": http_receiver.url("/moved"), "secret": SECRET}
    )

    with pytest.raises(DeliveryError) as raised:
        await channel.send(notification())

    assert raised.value.retryable is False and raised.value.status == 302
    assert [r.path for r in http_receiver.requests] == ["/moved"]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"url": "http://u:p@127.0.0.1/x", "headers": {"Authorization": "Bearer t"}}, "choose one"),
        ({"url": "http://127.0.0.1/x", "headers": {"X-Apiwatch-Signature": "forged"}}, "headers"),
        ({"url": "ftp://127.0.0.1/x"}, "url"),
    ],
)
def test_config_mistakes_are_rejected_at_build(options: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        build_channel("webhook", "bad", options)


def test_config_repr_hides_url_tokens_header_values_and_the_secret() -> None:
    config = WebhookConfig(
        url="https://h.example/hook?token=tok-0123456789",
        secret=SECRET,  # type: ignore[arg-type]
        headers={"X-Api-Key": "hdr-0123456789"},
    )
    shown = repr(config)
    assert "tok-0123456789" not in shown and "hdr-0123456789" not in shown and SECRET not in shown
