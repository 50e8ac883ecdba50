"""Retry-After from the HTTP channels' receivers reaches the error, so the deliverer waits it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from apiwatch.alerting.channels import DeliveryError, build_channel
from apiwatch.probe.classify import parse_retry_after
from tests.alerting.channels.receivers import HttpReceiver, Reply, notification

HTTP_KINDS = ["pagerduty", "slack", "webhook"]


def build(kind: str, http: HttpReceiver) -> object:
    config: dict[str, object] = {"url": http.url(f"/{kind}")}
    if kind == "pagerduty":
        config["routing_key"] = "rk-0123456789"
    return build_channel(kind, kind, config)


@pytest.mark.parametrize("kind", HTTP_KINDS)
async def test_429_exposes_retry_after_seconds(kind: str, http_receiver: HttpReceiver) -> None:
    http_receiver.script(
        f"/{kind}", Reply(status=429, body="rate_limited", headers={"Retry-After": "7"})
    )

    with pytest.raises(DeliveryError) as raised:
        await build(kind, http_receiver).send(notification())  # type: ignore[attr-defined]

    assert raised.value.retryable is True
    assert raised.value.retry_after_s == 7.0


@pytest.mark.parametrize("kind", HTTP_KINDS)
async def test_retry_after_on_a_permanent_failure_is_ignored(
    kind: str, http_receiver: HttpReceiver
) -> None:
    http_receiver.script(
        f"/{kind}", Reply(status=400, body="invalid", headers={"Retry-After": "7"})
    )

    with pytest.raises(DeliveryError) as raised:
        await build(kind, http_receiver).send(notification())  # type: ignore[attr-defined]

    assert raised.value.retryable is False
    assert raised.value.retry_after_s is None


def test_retry_after_accepts_seconds_and_http_dates_and_ignores_garbage() -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert (
        parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now)
        == 30.0
    )
    assert (
        parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now=now) == 0.0
    )
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
