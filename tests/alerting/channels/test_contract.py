"""The contract every registered channel keeps, run over each entry of `REGISTRY` against
real local receivers: it delivers the rendered notification (firing and resolved), its
failures say correctly whether a retry could help, and no secret (URL token, password,
routing key, HMAC secret) appears in an error or a log line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from structlog.testing import capture_logs

from apiwatch.alerting.channels import REGISTRY, Channel, DeliveryError, build_channel
from apiwatch.alerting.delivery import Deliverer
from apiwatch.alerting.model import AlertState, Notification
from tests.alerting.channels.conftest import SMTP_PASSWORD, SMTP_USER
from tests.alerting.channels.receivers import HttpReceiver, Reply, SmtpReceiver, free_port
from tests.alerting.channels.receivers import notification as make_notification

HMAC_SECRET = "hmac-S3cret-0f9e8d7c"
HOOK_TOKEN = "hookTOKEN-a1b2c3d4e5f6"
QUERY_TOKEN = "qTOKEN-998877665544"
BASIC_PASSWORD = "basicPW-5a4b3c"
HEADER_TOKEN = "bearerTOKEN-1122334455"
SLACK_TOKEN = "XXslackTOKENxx0123456789"
ROUTING_KEY = "R0UTINGkey0123456789abcdef012345"
APPRISE_TOKEN = "appriseTOKEN-77aa88bb99cc"
APPRISE_PASSWORD = "apprisePW-3d2e1f"

HTTP_CODES = {
    400: False, 401: False, 403: False, 404: False,
    408: True, 429: True, 500: True, 502: True, 503: True,
}  # fmt: skip
SMTP_CODES = {421: True, 451: True, 550: False, 535: False}
CODES = {"webhook": HTTP_CODES, "slack": HTTP_CODES, "pagerduty": HTTP_CODES,
         "apprise": HTTP_CODES, "email": SMTP_CODES}  # fmt: skip


@dataclass
class Target:
    """One channel kind wired to the local receivers."""

    config: dict[str, Any]
    secrets: list[str]
    # Make the next delivery fail with this status (HTTP) or reply code (SMTP).
    fail_next: Callable[[int], None]
    # What arrived, one text per message (body, or subject and plain body for email).
    received: Callable[[], list[str]]
    # The same channel pointed at a port where nothing listens.
    unreachable: dict[str, Any]


def _http_received(http: HttpReceiver, path: str) -> Callable[[], list[str]]:
    return lambda: [r.text for r in http.at(path)]


def webhook_target(http: HttpReceiver, smtp: SmtpReceiver) -> Target:
    path = f"/hooks/{HOOK_TOKEN}"
    url = http.url(f"{path}?token={QUERY_TOKEN}").replace("://", f"://user:{BASIC_PASSWORD}@")
    config = {"url": url, "secret": HMAC_SECRET, "headers": {"X-Api-Key": HEADER_TOKEN}}
    return Target(
        config=config,
        secrets=[HOOK_TOKEN, QUERY_TOKEN, BASIC_PASSWORD, HMAC_SECRET, HEADER_TOKEN],
        fail_next=lambda code: http.script(path, code),
        received=_http_received(http, path),
        unreachable={**config, "url": f"http://127.0.0.1:{free_port()}{path}?token={QUERY_TOKEN}"},
    )


def slack_target(http: HttpReceiver, smtp: SmtpReceiver) -> Target:
    path = f"/services/T0TEST/B0TEST/{SLACK_TOKEN}"
    return Target(
        config={"url": http.url(path)},
        secrets=[SLACK_TOKEN],
        fail_next=lambda code: http.script(path, code),
        received=_http_received(http, path),
        unreachable={"url": f"http://127.0.0.1:{free_port()}{path}"},
    )


def pagerduty_target(http: HttpReceiver, smtp: SmtpReceiver) -> Target:
    path = "/v2/enqueue"
    http.defaults[path] = Reply(status=202, body='{"status":"success","message":"Event processed"}')
    config = {"url": http.url(path), "routing_key": ROUTING_KEY}
    # The routing key is in the body we send; the receiver's copy is what "received" checks.
    return Target(
        config=config,
        secrets=[ROUTING_KEY],
        fail_next=lambda code: http.script(path, code),
        received=_http_received(http, path),
        unreachable={**config, "url": f"http://127.0.0.1:{free_port()}{path}"},
    )


def email_target(http: HttpReceiver, smtp: SmtpReceiver) -> Target:
    config = {
        "host": "127.0.0.1", "port": smtp.port, "security": "none",
        "username": SMTP_USER, "password": SMTP_PASSWORD,
        "from": "apiwatch@example.test", "to": ["oncall@example.test"], "timeout_s": 5,
    }  # fmt: skip

    def received() -> list[str]:
        return [
            f"{m['Subject']}\n{m.get_body(preferencelist=('plain',)).get_content()}"  # type: ignore[union-attr]
            for m in smtp.messages
        ]

    return Target(
        config=config,
        secrets=[SMTP_PASSWORD],
        fail_next=lambda code: smtp.reply_next_data(f"{code} 4.0.0 scripted reply {code}"),
        received=received,
        unreachable={**config, "port": free_port()},
    )


def apprise_target(http: HttpReceiver, smtp: SmtpReceiver) -> Target:
    path = f"/apprise/{APPRISE_TOKEN}"
    host = http.base.removeprefix("http://")
    url = f"json://user:{APPRISE_PASSWORD}@{host}{path}"
    return Target(
        config={"urls": [url]},
        secrets=[APPRISE_TOKEN, APPRISE_PASSWORD],
        fail_next=lambda code: http.script(path, code),
        received=_http_received(http, path),
        unreachable={"urls": [f"json://user:{APPRISE_PASSWORD}@127.0.0.1:{free_port()}{path}"]},
    )


TARGETS: dict[str, Callable[[HttpReceiver, SmtpReceiver], Target]] = {
    "webhook": webhook_target,
    "slack": slack_target,
    "pagerduty": pagerduty_target,
    "email": email_target,
    "apprise": apprise_target,
}
KINDS = sorted(REGISTRY)
CODE_CASES = [(kind, code, retry) for kind in KINDS for code, retry in CODES.get(kind, {}).items()]


@pytest.fixture
def target_for(http_receiver: HttpReceiver, smtp_auth: SmtpReceiver) -> Callable[[str], Target]:
    def make(kind: str) -> Target:
        assert kind in TARGETS, f"channel kind {kind!r} has no contract target: add one here"
        return TARGETS[kind](http_receiver, smtp_auth)

    return make


def channel(kind: str, config: dict[str, Any]) -> Channel:
    return build_channel(kind, f"contract-{kind}", {"kind": kind, **config})


def assert_no_secret(target: Target, *texts: str) -> None:
    for text in texts:
        for secret in target.secrets:
            assert secret not in text, f"secret {secret[:4]}… leaked into: {text[:200]}"


def test_every_registered_kind_has_a_contract_target_and_codes() -> None:
    assert set(TARGETS) == set(REGISTRY)
    assert set(CODES) == set(REGISTRY)


@pytest.mark.parametrize("kind", KINDS)
async def test_success_delivers_the_rendered_notification_firing_and_resolved(
    kind: str, target_for: Callable[[str], Target]
) -> None:
    target = target_for(kind)
    sender = channel(kind, target.config)
    assert sender.kind == kind and sender.name == f"contract-{kind}"
    firing = make_notification()
    resolved = make_notification(state=AlertState.RESOLVED)

    await sender.send(firing)
    await sender.send(resolved)

    first, second = target.received()
    for text, sent in ((first, firing), (second, resolved)):
        assert sent.group_key in text
    assert firing.title in first and "firing" in first.lower()
    assert "resolve" in second.lower() and "firing" not in second.lower()


@pytest.mark.parametrize(("kind", "code", "retryable"), CODE_CASES)
async def test_failure_status_decides_whether_to_retry(
    kind: str, code: int, retryable: bool, target_for: Callable[[str], Target]
) -> None:
    target = target_for(kind)
    target.fail_next(code)

    with pytest.raises(DeliveryError) as raised:
        await channel(kind, target.config).send(make_notification())

    assert raised.value.retryable is retryable
    assert raised.value.status == code
    assert str(code) in str(raised.value)
    assert_no_secret(target, str(raised.value), repr(raised.value))


@pytest.mark.parametrize("kind", KINDS)
async def test_unreachable_receiver_is_a_retryable_failure(
    kind: str, target_for: Callable[[str], Target]
) -> None:
    target = target_for(kind)

    with pytest.raises(DeliveryError) as raised:
        await channel(kind, target.unreachable).send(make_notification())

    assert raised.value.retryable is True
    assert_no_secret(target, str(raised.value), repr(raised.value))


@pytest.mark.parametrize("kind", KINDS)
async def test_no_secret_in_errors_outcomes_or_logs(
    kind: str, target_for: Callable[[str], Target], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    target = target_for(kind)
    good = channel(kind, target.config)
    down = channel(kind, target.unreachable)
    permanent = next(code for code, retry in CODES[kind].items() if not retry)
    transient = next(code for code, retry in CODES[kind].items() if retry)
    slept: list[float] = []

    async def no_wait(seconds: float) -> None:
        slept.append(seconds)

    deliverer = Deliverer(sleep=no_wait, max_attempts=2)
    notice: Notification = make_notification()
    with capture_logs() as events:
        target.fail_next(transient)
        ok = await deliverer.deliver(notice, [good])
        target.fail_next(permanent)
        failed = await deliverer.deliver(notice, [good, down])

    assert [o.delivered for o in ok] == [True] and ok[0].attempts == 2
    assert [o.delivered for o in failed] == [False, False]
    assert failed[0].retryable is False and failed[1].retryable is True
    assert target.received(), "the retried delivery arrived"
    assert events, "the deliverer logs each outcome"
    texts = [repr(event) for event in events] + [caplog.text, repr(good), repr(down)]
    texts += [str(o) for o in ok + failed]
    assert_no_secret(target, *texts)
