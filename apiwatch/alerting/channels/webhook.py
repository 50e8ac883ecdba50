"""The native webhook channel: the notification as JSON, POSTed to a URL, optionally signed.

Body: `render.notification_document` (version, group_key, dedup_key, title, severity, state,
reason, provider, category, report, alerts[] with every field).

Signature (when `secret` is set), in the style of Stripe's and Slack's:
- `X-Apiwatch-Timestamp: <unix seconds>`
- `X-Apiwatch-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + raw body)>`
The timestamp is inside the signed bytes, so it cannot be changed without breaking the
signature; a receiver recomputes the HMAC over the raw body it got, compares in constant
time, and rejects timestamps more than a few minutes old, which stops replays.
`verify_signature` does exactly that and is what a Python receiver can import.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from apiwatch.alerting.channels.base import ChannelConfig, http_url
from apiwatch.alerting.channels.http import post
from apiwatch.alerting.channels.redact import Redactor
from apiwatch.alerting.channels.render import notification_document
from apiwatch.alerting.model import Notification

KIND = "webhook"
SIGNATURE_HEADER = "X-Apiwatch-Signature"
TIMESTAMP_HEADER = "X-Apiwatch-Timestamp"
DEFAULT_TOLERANCE_S = 300.0
_OWN_HEADERS = {"content-type", SIGNATURE_HEADER.lower(), TIMESTAMP_HEADER.lower()}


class WebhookConfig(ChannelConfig):
    # repr=False: the URL and header values hold tokens; a logged config must not show them.
    url: str = Field(repr=False)
    secret: SecretStr | None = None
    headers: dict[str, str] = Field(default_factory=dict, repr=False)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return http_url(value)

    @field_validator("headers")
    @classmethod
    def _no_own_headers(cls, value: dict[str, str]) -> dict[str, str]:
        clash = sorted(name for name in value if name.lower() in _OWN_HEADERS)
        if clash:
            raise ValueError(f"may not set {', '.join(clash)} (apiwatch sets it)")
        return value

    @model_validator(mode="after")
    def _one_authorization(self) -> WebhookConfig:
        has_header = any(name.lower() == "authorization" for name in self.headers)
        if has_header and "@" in urlsplit(self.url).netloc:
            raise ValueError("credentials in the URL and an Authorization header: choose one")
        return self


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-Apiwatch-Signature` value for `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def verify_signature(
    *,
    secret: str,
    body: bytes,
    timestamp: str,
    signature: str,
    now: float | None = None,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> bool:
    """Whether a received webhook is authentic and fresh (for receivers)."""
    try:
        age = (time.time() if now is None else now) - int(timestamp)
    except ValueError:
        return False
    if abs(age) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookChannel:
    kind = KIND

    def __init__(self, config: WebhookConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.name = config.name or KIND
        self._clock = clock
        secret = config.secret.get_secret_value() if config.secret else None
        # Custom headers are where people put bearer tokens.
        self._redact = Redactor([secret, *config.headers.values()])
        self._redact.add_url(config.url)

    def __repr__(self) -> str:
        return f"WebhookChannel(name={self.name!r})"

    def render(self, notification: Notification) -> bytes:
        return json.dumps(notification_document(notification), separators=(",", ":")).encode()

    def headers(self, body: bytes) -> Mapping[str, str]:
        headers = {**self.config.headers, "Content-Type": "application/json"}
        if self.config.secret is not None:
            timestamp = str(int(self._clock()))
            headers[TIMESTAMP_HEADER] = timestamp
            headers[SIGNATURE_HEADER] = sign(self.config.secret.get_secret_value(), timestamp, body)
        return headers

    async def send(self, notification: Notification) -> None:
        body = self.render(notification)
        await post(
            url=self.config.url,
            body=body,
            headers=self.headers(body),
            timeout_s=self.config.timeout_s,
            redact=self._redact,
            what=f"webhook {self.name!r}",
        )


def build(config: dict[str, Any]) -> WebhookChannel:
    return WebhookChannel(WebhookConfig.model_validate(config))
