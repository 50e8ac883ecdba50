"""Fixtures: the local HTTP receiver and SMTP receivers (plain, and one requiring AUTH)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.alerting.channels.receivers import HttpReceiver, SmtpReceiver

SMTP_USER = "alerts@example.test"
SMTP_PASSWORD = "smtp-Pa55word-7c1e"


@pytest.fixture
async def http_receiver() -> AsyncIterator[HttpReceiver]:
    receiver = HttpReceiver()
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()


@pytest.fixture(scope="module")
def smtp_receiver() -> Iterator[SmtpReceiver]:
    receiver = SmtpReceiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def smtp(smtp_receiver: SmtpReceiver) -> SmtpReceiver:
    """The module's plain SMTP receiver, emptied for this test."""
    smtp_receiver.messages.clear()
    smtp_receiver.handler.envelopes.clear()
    smtp_receiver.handler.data_replies.clear()
    smtp_receiver.handler.rcpt_replies.clear()
    return smtp_receiver


@pytest.fixture(scope="module")
def smtp_auth_receiver() -> Iterator[SmtpReceiver]:
    receiver = SmtpReceiver(credentials=(SMTP_USER, SMTP_PASSWORD))
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def smtp_auth(smtp_auth_receiver: SmtpReceiver) -> SmtpReceiver:
    smtp_auth_receiver.messages.clear()
    smtp_auth_receiver.handler.envelopes.clear()
    smtp_auth_receiver.handler.data_replies.clear()
    smtp_auth_receiver.handler.rcpt_replies.clear()
    smtp_auth_receiver.logins.clear()
    return smtp_auth_receiver
