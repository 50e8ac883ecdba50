"""The PagerDuty channel: Events API v2 bodies, dedup keys, and PagerDuty's answers."""

from __future__ import annotations

import pytest

from apiwatch.alerting.channels import DeliveryError, build_channel
from apiwatch.alerting.channels.pagerduty import DEFAULT_URL, PagerDutyConfig, dedup_key
from apiwatch.alerting.model import AlertState
from apiwatch.domain import Severity
from tests.alerting.channels.receivers import HttpReceiver, Reply, notification

KEY = "R0UTINGkey0123456789abcdef012345"
PATH = "/v2/enqueue"
ACCEPTED = Reply(status=202, body='{"status":"success","message":"Event processed"}')


def pagerduty(http: HttpReceiver) -> object:
    http.defaults[PATH] = ACCEPTED
    return build_channel("pagerduty", "oncall", {"url": http.url(PATH), "routing_key": KEY})


async def test_resolve_carries_the_same_dedup_key_as_the_trigger(
    http_receiver: HttpReceiver,
) -> None:
    channel = pagerduty(http_receiver)
    firing = notification()
    await channel.send(firing)  # type: ignore[attr-defined]
    await channel.send(notification(state=AlertState.RESOLVED))  # type: ignore[attr-defined]

    trigger, resolve = (r.json() for r in http_receiver.at(PATH))
    assert trigger["event_action"] == "trigger" and resolve["event_action"] == "resolve"
    assert trigger["dedup_key"] == resolve["dedup_key"] == firing.dedup_key
    assert trigger["routing_key"] == resolve["routing_key"] == KEY
    assert "payload" not in resolve


async def test_trigger_payload_has_summary_source_severity_and_details(
    http_receiver: HttpReceiver,
) -> None:
    sent = notification(severity=Severity.WARNING)
    await pagerduty(http_receiver).send(sent)  # type: ignore[attr-defined]

    payload = http_receiver.at(PATH)[0].json()["payload"]
    assert payload["summary"].startswith("[WARNING] coingecko is offline")
    assert (payload["source"], payload["severity"]) == ("coingecko", "warning")
    assert (payload["component"], payload["group"]) == ("coingecko", "market_data")
    assert payload["timestamp"] == sent.alerts[0].fired_at.isoformat()
    details = payload["custom_details"]
    assert details["reason"] == "first_notification" and details["report"] == sent.report
    assert [a["rule"] for a in details["alerts"]] == ["status_offline", "error_rate"]


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [(Severity.CRITICAL, "critical"), (Severity.WARNING, "warning"), (Severity.INFO, "info")],
)
async def test_severity_maps_onto_pagerduty_severities(
    ours: Severity, theirs: str, http_receiver: HttpReceiver
) -> None:
    await pagerduty(http_receiver).send(notification(severity=ours))  # type: ignore[attr-defined]
    assert http_receiver.at(PATH)[0].json()["payload"]["severity"] == theirs


async def test_invalid_event_400_is_permanent_and_keeps_pagerduty_explanation(
    http_receiver: HttpReceiver,
) -> None:
    answer = (
        '{"status":"invalid event","message":"Event object is invalid",'
        f'"errors":["routing_key {KEY} is not valid"]}}'
    )
    http_receiver.script(PATH, Reply(status=400, body=answer))

    with pytest.raises(DeliveryError) as raised:
        await pagerduty(http_receiver).send(notification())  # type: ignore[attr-defined]

    assert raised.value.retryable is False and raised.value.status == 400
    assert "Event object is invalid" in str(raised.value)
    # PagerDuty echoing the key back does not carry it into our error.
    assert KEY not in str(raised.value) and KEY not in repr(raised.value)


def test_over_long_group_key_becomes_a_stable_dedup_key_within_255_characters() -> None:
    sent = notification(provider="p" * 300)
    key = dedup_key(sent)
    assert len(key) <= 255 and key == dedup_key(notification(provider="p" * 300))
    assert key != dedup_key(notification(provider="q" * 300))
    assert dedup_key(notification()) == notification().group_key


def test_default_url_is_pagerduty_events_v2_and_the_key_is_hidden() -> None:
    config = PagerDutyConfig(routing_key=KEY)  # type: ignore[arg-type]
    assert config.url == DEFAULT_URL == "https://events.pagerduty.com/v2/enqueue"
    assert KEY not in repr(config)
