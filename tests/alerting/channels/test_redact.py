"""Redaction of channel secrets: URLs cut back to their host, known secrets masked."""

from __future__ import annotations

import pytest

from apiwatch.alerting.channels import DeliveryError
from apiwatch.alerting.channels.redact import Redactor, redact_url, scrub_urls


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.slack.com/services/T0/B0/XXXX", "https://hooks.slack.com/…"),
        ("https://user:pw@example.com:8443/hook?token=abc", "https://example.com:8443/…"),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000/"),
        ("json://[::1]:8080/x", "json://[::1]:8080/…"),
        ("not a url", "***"),
    ],
)
def test_redact_url_keeps_only_scheme_host_and_port(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_scrub_urls_redacts_every_url_in_free_text() -> None:
    text = "POST to https://a.example/t/SECRET1 failed, then tgram://bot123:TOKEN/chat too"
    # The second is not a valid URL (its "port" is a token): it is masked whole.
    assert scrub_urls(text) == "POST to https://a.example/… failed, then *** too"


def test_redactor_masks_url_parts_and_their_percent_encoded_forms() -> None:
    redact = Redactor(["hmac-secret-1"])
    redact.add_url("https://user:p%40ss-word@hooks.example/hook/TOKEN0123456789?key=qk-998877")

    echoed = (
        "bad signature hmac-secret-1; path /hook/TOKEN0123456789 key qk-998877 "
        "segment TOKEN0123456789 encoded qk%2D998877 pw p%40ss-word"
    )
    clean = redact(echoed)
    for secret in ("hmac-secret-1", "TOKEN0123456789", "qk-998877", "p%40ss-word"):
        assert secret not in clean
    assert "bad signature ***" in clean


def test_redactor_ignores_secrets_too_short_to_mask_safely() -> None:
    assert Redactor(["ab", None, ""])("a cab and a tab") == "a cab and a tab"


def test_delivery_error_never_shows_a_url_path_in_str_or_repr() -> None:
    error = DeliveryError(
        "webhook: cannot reach https://h.example/hook/TOKEN?x=1", retryable=True, status=None
    )
    assert "TOKEN" not in str(error) and "TOKEN" not in repr(error)
    assert error.retryable and not error.permanent
