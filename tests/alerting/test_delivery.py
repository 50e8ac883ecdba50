"""The deliverer: concurrent sends, retries with backoff for retryable failures only, one
outcome per channel (delivered or not) handed to the caller, and logs without secrets.

Channels are real (webhook, Slack) against a local HTTP receiver; two tiny stand-in channels
play a channel with a bug and one that hangs, which no real channel can be made to do.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from structlog.testing import capture_logs

from apiwatch.alerting.channels import Channel, build_channel
from apiwatch.alerting.delivery import Deliverer, DeliveryOutcome
from apiwatch.alerting.model import Notification
from tests.alerting.channels.receivers import HttpReceiver, Reply, free_port, notification

TOKEN = "deliveryTOKEN-0123456789"
AT = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


@pytest.fixture
async def http_receiver() -> AsyncIterator[HttpReceiver]:
    receiver = HttpReceiver()
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()


class Sleeps:
    """An injected sleep that records the waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def webhook(http: HttpReceiver, path: str = f"/hook/{TOKEN}", **extra: object) -> Channel:
    return build_channel("webhook", path.strip("/").split("/")[0], {"url": http.url(path), **extra})


def deliverer(sleeps: Sleeps, **extra: object) -> Deliverer:
    return Deliverer(sleep=sleeps, clock=lambda: AT, **extra)  # type: ignore[arg-type]


async def test_503_then_200_is_delivered_on_the_second_attempt(http_receiver: HttpReceiver) -> None:
    http_receiver.script(f"/hook/{TOKEN}", 503)
    sleeps = Sleeps()

    [outcome] = await deliverer(sleeps).deliver(notification(), [webhook(http_receiver)])

    assert outcome == DeliveryOutcome(
        channel="hook",
        kind="webhook",
        delivered=True,
        attempts=2,
        error=None,
        retryable=None,
        at=AT,
    )
    assert sleeps.waits == [1.0]
    assert len(http_receiver.requests) == 2


async def test_retryable_failures_back_off_exponentially_up_to_four_attempts(
    http_receiver: HttpReceiver,
) -> None:
    http_receiver.defaults[f"/hook/{TOKEN}"] = Reply(status=503, body="down")
    sleeps = Sleeps()

    [outcome] = await deliverer(sleeps).deliver(notification(), [webhook(http_receiver)])

    assert (outcome.delivered, outcome.attempts, outcome.retryable) == (False, 4, True)
    assert outcome.error is not None and "HTTP 503" in outcome.error
    assert TOKEN not in outcome.error
    assert sleeps.waits == [1.0, 2.0, 4.0]


async def test_retry_after_sets_the_wait(http_receiver: HttpReceiver) -> None:
    http_receiver.script(f"/hook/{TOKEN}", Reply(status=429, headers={"Retry-After": "7"}))
    sleeps = Sleeps()

    [outcome] = await deliverer(sleeps).deliver(notification(), [webhook(http_receiver)])

    assert outcome.delivered and outcome.attempts == 2
    assert sleeps.waits == [7.0]


def test_backoff_is_capped_at_sixty_seconds_even_when_retry_after_asks_for_more() -> None:
    policy = Deliverer()
    assert [policy.backoff(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert policy.backoff(7) == 60.0
    assert policy.backoff(1, retry_after_s=300.0) == 60.0
    assert policy.backoff(3, retry_after_s=0.5) == 4.0


async def test_permanent_failure_is_not_retried(http_receiver: HttpReceiver) -> None:
    http_receiver.script(f"/hook/{TOKEN}", Reply(status=400, body="bad payload"))
    sleeps = Sleeps()

    [outcome] = await deliverer(sleeps).deliver(notification(), [webhook(http_receiver)])

    assert (outcome.delivered, outcome.attempts, outcome.retryable) == (False, 1, False)
    assert "HTTP 400" in (outcome.error or "")
    assert sleeps.waits == [] and len(http_receiver.requests) == 1


async def test_a_channel_that_is_down_does_not_stop_the_others(http_receiver: HttpReceiver) -> None:
    down = build_channel("webhook", "down", {"url": f"http://127.0.0.1:{free_port()}/x"})
    up = build_channel("slack", "up", {"url": http_receiver.url("/services/T/B/slacktoken123456")})

    outcomes = await deliverer(Sleeps()).deliver(notification(), [down, up])

    assert [(o.channel, o.delivered) for o in outcomes] == [("down", False), ("up", True)]
    assert outcomes[0].attempts == 4 and outcomes[0].retryable is True
    assert len(http_receiver.requests) == 1


async def test_channels_are_sent_to_concurrently(http_receiver: HttpReceiver) -> None:
    # /a answers only once /b has arrived: sent one after the other, /a would time out.
    b_arrived = asyncio.Event()
    http_receiver.script("/a", Reply(wait=b_arrived))
    http_receiver.script("/b", Reply(arrived=b_arrived))
    channels = [webhook(http_receiver, "/a", timeout_s=5), webhook(http_receiver, "/b")]

    outcomes = await deliverer(Sleeps(), max_attempts=1).deliver(notification(), channels)

    assert [o.delivered for o in outcomes] == [True, True]


async def test_every_outcome_reaches_on_outcome_failed_ones_included(
    http_receiver: HttpReceiver,
) -> None:
    http_receiver.script("/bad", Reply(status=404, body="gone"))
    seen: list[tuple[str, DeliveryOutcome]] = []

    async def store(sent: Notification, outcome: DeliveryOutcome) -> None:
        seen.append((sent.group_key, outcome))

    sent = notification()
    channels = [webhook(http_receiver, "/good"), webhook(http_receiver, "/bad")]
    outcomes = await deliverer(Sleeps(), on_outcome=store).deliver(sent, channels)

    assert sorted(o.channel for _, o in seen) == ["bad", "good"]
    assert {o for _, o in seen} == set(outcomes)
    assert all(key == sent.group_key for key, _ in seen)
    assert [o.delivered for o in outcomes] == [True, False]


async def test_a_failing_callback_is_logged_and_delivery_still_returns(
    http_receiver: HttpReceiver,
) -> None:
    def broken(sent: Notification, outcome: DeliveryOutcome) -> None:
        raise RuntimeError("database is gone")

    with capture_logs() as events:
        [outcome] = await deliverer(Sleeps(), on_outcome=broken).deliver(
            notification(), [webhook(http_receiver)]
        )

    assert outcome.delivered
    assert any(e["event"] == "notification_outcome_callback_failed" for e in events)


class BrokenChannel:
    name, kind = "broken", "test"

    async def send(self, notification: Notification) -> None:
        raise RuntimeError(f"bug while posting to https://hooks.example/{TOKEN}")


class HangingChannel:
    name, kind = "hanging", "test"

    async def send(self, notification: Notification) -> None:
        await asyncio.Event().wait()


async def test_a_channel_bug_is_a_permanent_failure_not_a_crash(
    http_receiver: HttpReceiver,
) -> None:
    sleeps = Sleeps()
    outcomes = await deliverer(sleeps).deliver(
        notification(), [BrokenChannel(), webhook(http_receiver)]
    )

    broken, fine = outcomes
    assert (broken.delivered, broken.attempts, broken.retryable) == (False, 1, False)
    assert broken.error is not None and "RuntimeError" in broken.error
    assert TOKEN not in broken.error
    assert fine.delivered and sleeps.waits == []


async def test_a_hanging_channel_is_cut_off_by_the_attempt_timeout() -> None:
    sleeps = Sleeps()
    [outcome] = await deliverer(sleeps, attempt_timeout_s=0.05, max_attempts=2).deliver(
        notification(), [HangingChannel()]
    )
    assert (outcome.delivered, outcome.attempts, outcome.retryable) == (False, 2, True)
    assert sleeps.waits == [1.0]


async def test_retries_and_final_outcomes_are_logged_without_secrets(
    http_receiver: HttpReceiver,
) -> None:
    http_receiver.script(f"/hook/{TOKEN}", Reply(status=502, body=f"proxy error for /hook/{TOKEN}"))
    http_receiver.script("/bad", 401)

    with capture_logs() as events:
        await deliverer(Sleeps()).deliver(
            notification(), [webhook(http_receiver), webhook(http_receiver, "/bad")]
        )

    names = [e["event"] for e in events]
    assert names.count("notification_delivery_retry") == 1
    assert names.count("notification_delivered") == 1
    assert names.count("notification_delivery_failed") == 1
    failed = next(e for e in events if e["event"] == "notification_delivery_failed")
    assert (failed["channel"], failed["retryable"], failed["status"]) == ("bad", False, 401)
    assert all(TOKEN not in repr(e) for e in events)


async def test_no_channels_means_no_outcomes() -> None:
    assert await Deliverer().deliver(notification(), []) == []


def test_at_least_one_attempt_is_required() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        Deliverer(max_attempts=0)
