"""The apprise channel: real delivery through apprise's json:// to the local receiver."""

from __future__ import annotations

import asyncio
import logging

import pytest

from apiwatch.alerting.channels import DeliveryError, build_channel
from apiwatch.alerting.model import AlertState
from apiwatch.domain import Severity
from tests.alerting.channels.receivers import HttpReceiver, Reply, notification

TOKEN = "appriseTOKEN-0a1b2c3d4e5f"
PATH = f"/notify/{TOKEN}"


def apprise_url(http: HttpReceiver, path: str = PATH) -> str:
    return f"json://{http.base.removeprefix('http://')}{path}"


async def test_delivers_title_body_and_type_through_apprise(http_receiver: HttpReceiver) -> None:
    channel = build_channel("apprise", "chat", {"urls": apprise_url(http_receiver)})
    sent = notification(severity=Severity.WARNING)
    await channel.send(sent)
    await channel.send(notification(state=AlertState.RESOLVED))

    firing, resolved = (r.json() for r in http_receiver.at(PATH))
    assert firing["title"] == "[WARNING] coingecko is offline (2 alerts)"
    assert "status_offline" in firing["message"] and sent.report in firing["message"]
    assert (firing["type"], resolved["type"]) == ("warning", "success")


async def test_every_url_of_a_channel_is_notified(http_receiver: HttpReceiver) -> None:
    urls = [apprise_url(http_receiver, "/a"), apprise_url(http_receiver, "/b")]
    await build_channel("apprise", "two", {"urls": urls}).send(notification())
    assert sorted(r.path for r in http_receiver.requests) == ["/a", "/b"]


async def test_send_runs_off_the_event_loop(http_receiver: HttpReceiver) -> None:
    release, arrived = asyncio.Event(), asyncio.Event()
    http_receiver.script(PATH, Reply(arrived=arrived, wait=release))
    channel = build_channel("apprise", "chat", {"urls": [apprise_url(http_receiver)]})

    sending = asyncio.create_task(channel.send(notification()))
    # The receiver runs on this loop: it can only see the request (and the test can only
    # release it) if apprise's blocking HTTP call is not holding the loop.
    await asyncio.wait_for(arrived.wait(), timeout=10)
    release.set()
    await asyncio.wait_for(sending, timeout=10)
    assert len(http_receiver.at(PATH)) == 1


async def test_no_answer_within_the_timeout_is_retryable(http_receiver: HttpReceiver) -> None:
    release = asyncio.Event()
    http_receiver.script(PATH, Reply(wait=release))
    channel = build_channel(
        "apprise", "chat", {"urls": [apprise_url(http_receiver)], "timeout_s": 0.2}
    )
    try:
        with pytest.raises(DeliveryError) as raised:
            await channel.send(notification())
    finally:
        release.set()
    assert raised.value.retryable is True and "0.2 s" in str(raised.value)


def test_unsupported_url_is_rejected_at_build_without_echoing_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ValueError, match="urls") as raised:
        build_channel("apprise", "bad", {"urls": [f"nosuchservice://{TOKEN}@host/{TOKEN}"]})
    assert "nosuchservice" in str(raised.value)
    assert TOKEN not in str(raised.value) and TOKEN not in caplog.text


def test_channel_repr_and_config_repr_hide_the_urls(http_receiver: HttpReceiver) -> None:
    channel = build_channel("apprise", "chat", {"urls": [apprise_url(http_receiver)]})
    assert TOKEN not in repr(channel) and TOKEN not in repr(channel.config)  # type: ignore[attr-defined]
