"""What every notification channel is: a name, a kind, and `send`, which either delivers or
raises a `DeliveryError` that says whether trying again could help (docs/alerting.md).

Also the rules shared by the HTTP channels: which status codes are worth a retry, and how a
server's Retry-After is read.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from apiwatch.alerting.channels.redact import scrub_urls
from apiwatch.alerting.model import Notification

# 408 request timeout, 425 too early, 429 too many requests: the request was fine, the moment
# was not. Every other 4xx means the request (URL, token, payload) is wrong and stays wrong.
RETRYABLE_4XX = frozenset({408, 425, 429})


class DeliveryError(Exception):
    """A notification was not delivered; `retryable` says whether a retry could succeed.

    The message is built from redacted text by the channel; URLs left in it are cut back to
    their host here as well, so neither `str()` nor `repr()` can carry a token.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        self.message = scrub_urls(message)
        super().__init__(self.message)
        self.retryable = retryable
        self.status = status
        self.retry_after_s = retry_after_s

    @property
    def permanent(self) -> bool:
        return not self.retryable

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return (
            f"DeliveryError({self.message!r}, retryable={self.retryable}, "
            f"status={self.status}, retry_after_s={self.retry_after_s})"
        )


@runtime_checkable
class Channel(Protocol):
    """A configured destination: `name` from the settings (e.g. "ops-slack"), `kind` its
    registry key (e.g. "slack")."""

    name: str
    kind: str

    async def send(self, notification: Notification) -> None:
        """Deliver `notification` once, or raise `DeliveryError`. No retries here: the
        deliverer owns retries and backoff."""
        ...


class ChannelConfig(BaseModel):
    """Options common to every channel; each channel's model adds its own."""

    # Unknown options are typos until proven otherwise: fail at start-up, not at 3 a.m.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(default="", max_length=200)
    timeout_s: float = Field(default=10.0, gt=0, le=300)


def retryable_status(status: int) -> bool:
    """Whether an HTTP failure status is worth another attempt."""
    return status in RETRYABLE_4XX or status >= 500


def http_url(value: str) -> str:
    """Validator for webhook-style URLs; its message never echoes the (secret) URL."""
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        raise ValueError("is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError("must be an http:// or https:// URL with a host")
    return value
