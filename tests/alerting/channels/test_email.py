"""The email channel against aiosmtpd: message shape, authentication, and SMTP's answers."""

from __future__ import annotations

from typing import Any

import pytest

from apiwatch.alerting.channels import DeliveryError, build_channel
from apiwatch.alerting.model import AlertState
from tests.alerting.channels.conftest import SMTP_PASSWORD, SMTP_USER
from tests.alerting.channels.receivers import SmtpReceiver, notification


def email(smtp: SmtpReceiver, **extra: Any) -> Any:
    config = {
        "host": "127.0.0.1", "port": smtp.port, "security": "none",
        "from": "apiwatch@example.test", "to": ["a@example.test", "b@example.test"], "timeout_s": 5,
        **extra,
    }  # fmt: skip
    return build_channel("email", "mail", config)


async def test_message_has_subject_prefix_plain_text_and_html(smtp: SmtpReceiver) -> None:
    sent = notification()
    await email(smtp, subject_prefix="[prod]").send(sent)

    [message] = smtp.messages
    assert message["Subject"] == "[prod] [CRITICAL] coingecko is offline (2 alerts)"
    assert message["From"] == "apiwatch@example.test"
    assert smtp.handler.envelopes == [
        ("apiwatch@example.test", ["a@example.test", "b@example.test"])
    ]
    plain = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    assert "Suggested action: Wait for the provider" in plain and sent.report in plain
    assert "&lt;server_error&gt;" in html and "<server_error>" not in html


async def test_resolved_subject_says_resolved(smtp: SmtpReceiver) -> None:
    await email(smtp).send(notification(state=AlertState.RESOLVED))
    assert smtp.messages[0]["Subject"].startswith("[apiwatch] [RESOLVED] [CRITICAL]")


async def test_line_breaks_in_the_title_do_not_break_the_subject(smtp: SmtpReceiver) -> None:
    sent = notification()
    await email(smtp).send(type(sent)(**{**sent.__dict__, "title": "two\nlines\r\nhere"}))
    assert "two lines here" in smtp.messages[0]["Subject"]


async def test_credentials_are_used_to_log_in(smtp_auth: SmtpReceiver) -> None:
    await email(smtp_auth, username=SMTP_USER, password=SMTP_PASSWORD).send(notification())
    assert smtp_auth.logins == [SMTP_USER] and len(smtp_auth.messages) == 1


async def test_wrong_password_is_a_permanent_authentication_failure(
    smtp_auth: SmtpReceiver,
) -> None:
    wrong = "wrong-Pa55word-0000"
    with pytest.raises(DeliveryError) as raised:
        await email(smtp_auth, username=SMTP_USER, password=wrong).send(notification())

    assert raised.value.retryable is False and raised.value.status == 535
    assert "authentication failed" in str(raised.value)
    assert wrong not in repr(raised.value) and smtp_auth.messages == []


@pytest.mark.parametrize(
    ("reply", "retryable"), [("550 5.1.1 no such user", False), ("450 4.2.1 mailbox busy", True)]
)
async def test_every_recipient_refused_follows_the_reply_class(
    reply: str, retryable: bool, smtp: SmtpReceiver
) -> None:
    smtp.handler.rcpt_replies.extend([reply, reply])

    with pytest.raises(DeliveryError) as raised:
        await email(smtp).send(notification())

    assert raised.value.retryable is retryable
    assert raised.value.status == int(reply[:3])


async def test_one_refused_recipient_still_delivers_to_the_others(smtp: SmtpReceiver) -> None:
    smtp.handler.rcpt_replies.append("550 5.1.1 no such user")
    await email(smtp).send(notification())
    assert smtp.handler.envelopes == [("apiwatch@example.test", ["b@example.test"])]


async def test_starttls_required_but_not_offered_is_permanent(smtp: SmtpReceiver) -> None:
    with pytest.raises(DeliveryError) as raised:
        await email(smtp, security="starttls").send(notification())
    assert raised.value.retryable is False and "STARTTLS" in str(raised.value)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"username": SMTP_USER}, "username and password go together"),
        ({"to": []}, "to"),
        ({"from": "not-an-address"}, "from"),
        ({"security": "ssl"}, "security"),
    ],
)
def test_config_mistakes_name_the_field(
    options: dict[str, Any], field: str, smtp: SmtpReceiver
) -> None:
    with pytest.raises(ValueError, match=field) as raised:
        email(smtp, **options)
    assert SMTP_PASSWORD not in str(raised.value)


def test_password_never_shows_in_the_channel_repr(smtp: SmtpReceiver) -> None:
    channel = email(smtp, username=SMTP_USER, password=SMTP_PASSWORD)
    assert SMTP_PASSWORD not in repr(channel) and SMTP_PASSWORD not in repr(channel.config)
