"""Everything else apprise reaches (Discord, Telegram, Teams, ntfy, Matrix, …) from apprise
URLs. Named `apprise_channel` so it does not shadow the `apprise` library.

apprise is synchronous (requests underneath), so a send runs in a worker thread and never
blocks the event loop; the channel's timeout bounds the wait (the thread itself finishes on
apprise's own timeouts).

Retry decision: apprise only says True/False. Its plugins log HTTP failures as
`… error=<status>.`; when every failed service logged a status and each of those is a
permanent 4xx (400, 401, 403, 404…), the failure is permanent; anything else (429, 5xx,
connection errors, timeouts, no detail at all, apprise 1.x without per-call logs) counts as
retryable, because a lost alert costs more than a few extra attempts. With several URLs in
one channel, a retry goes to all of them again, so a partial failure can duplicate a
message on the services that got it: use one URL per channel where duplicates matter.

apprise URLs are credentials (tokens in paths, passwords, query keys). apprise and urllib3
log request URLs at debug level, so a filter on their loggers masks every configured URL's
secrets and cuts any URL back to its host before a record is emitted.

apprise itself is imported when a channel of this kind is configured or sends, not with the
module: a monitor without one does without it (a few MB resident with its plugins).
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from apiwatch.alerting.channels.base import ChannelConfig, DeliveryError, retryable_status
from apiwatch.alerting.channels.redact import Redactor
from apiwatch.alerting.channels.render import summary, text_body
from apiwatch.alerting.model import AlertState, Notification
from apiwatch.domain import Severity

KIND = "apprise"
# Loggers that print request URLs (apprise's plugins, and urllib3 under requests).
_NOISY_LOGGERS = ("apprise", "urllib3", "urllib3.connectionpool", "urllib3.connection")
_STATUS = re.compile(r"error=(\d{3})\b")
# apprise's NotifyType per severity, by name.
NOTIFY_TYPE = {
    Severity.CRITICAL: "FAILURE",
    Severity.WARNING: "WARNING",
    Severity.INFO: "INFO",
}


class _SecretLogFilter(logging.Filter):
    """Rewrites records of third-party loggers so no configured secret or URL path leaves."""

    def __init__(self) -> None:
        super().__init__()
        self.redact = Redactor()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        clean = self.redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


_log_filter: _SecretLogFilter | None = None


def _shared_log_filter() -> _SecretLogFilter:
    # One filter per process: loggers are process-wide, so is what they must not print.
    global _log_filter
    if _log_filter is None:
        _log_filter = _SecretLogFilter()
        for name in _NOISY_LOGGERS:
            logging.getLogger(name).addFilter(_log_filter)
    return _log_filter


class AppriseConfig(ChannelConfig):
    urls: list[SecretStr] = Field(min_length=1)
    timeout_s: float = Field(default=30.0, gt=0, le=300)

    @field_validator("urls", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("urls")
    @classmethod
    def _supported(cls, value: list[SecretStr]) -> list[SecretStr]:
        import apprise

        log_filter = _shared_log_filter()
        for url in value:
            log_filter.redact.add_url(url.get_secret_value())
        for index, url in enumerate(value):
            if apprise.Apprise.instantiate(url.get_secret_value()) is None:
                scheme = urlsplit(url.get_secret_value()).scheme or "none"
                raise ValueError(
                    f"item {index}: apprise does not support this URL (scheme {scheme!r})"
                )
        return value


def _failure(result: Any, what: str, redact: Redactor) -> DeliveryError:
    """The error for a failed notify: permanent only when every failure was a permanent 4xx."""
    if isinstance(result, bool) or not hasattr(result, "results"):
        return DeliveryError(f"{what}: apprise reported a failure", retryable=True)
    statuses: list[int | None] = []
    details: list[str] = []
    for service in result.results:
        if bool(service):
            continue
        messages = [e.message for e in service.logs() if e.level in ("WARNING", "ERROR")]
        codes = [int(m.group(1)) for m in map(_STATUS.search, messages) if m]
        statuses.append(codes[-1] if codes else None)
        reason = messages[-1] if messages else str(getattr(service.status, "name", "failed"))
        details.append(f"{service.name}: {reason}")
    retryable = not statuses or any(s is None or retryable_status(s) for s in statuses)
    known = [s for s in statuses if s is not None]
    detail = redact("; ".join(details))[:500] or "apprise reported a failure"
    return DeliveryError(
        f"{what}: {detail}", retryable=retryable, status=known[-1] if known else None
    )


class AppriseChannel:
    kind = KIND

    def __init__(self, config: AppriseConfig) -> None:
        self.config = config
        self.name = config.name or KIND
        self._redact = Redactor()
        for url in config.urls:
            self._redact.add_url(url.get_secret_value())

    def __repr__(self) -> str:
        return f"AppriseChannel(name={self.name!r}, urls={len(self.config.urls)})"

    def _notify_blocking(self, notification: Notification) -> Any:
        import apprise

        # A fresh Apprise per send: cheap next to the network call, and nothing is shared
        # between the worker threads of concurrent sends.
        client = apprise.Apprise()
        for url in self.config.urls:
            client.add(url.get_secret_value())
        resolved = notification.state is AlertState.RESOLVED
        return client.notify(
            body=text_body(notification),
            title=summary(notification),
            notify_type=apprise.NotifyType.SUCCESS
            if resolved
            else getattr(apprise.NotifyType, NOTIFY_TYPE[notification.severity]),
            body_format=apprise.NotifyFormat.TEXT,
        )

    async def send(self, notification: Notification) -> None:
        what = f"apprise {self.name!r}"
        try:
            result = await asyncio.wait_for(
                asyncio.to_thread(self._notify_blocking, notification),
                timeout=self.config.timeout_s,
            )
        except TimeoutError:
            raise DeliveryError(
                f"{what}: no answer within {self.config.timeout_s:g} s", retryable=True
            ) from None
        except Exception as error:
            raise DeliveryError(
                f"{what}: {type(error).__name__}: {self._redact(str(error))}", retryable=True
            ) from None
        if not bool(result):
            raise _failure(result, what, self._redact)


def build(config: dict[str, Any]) -> AppriseChannel:
    return AppriseChannel(AppriseConfig.model_validate(config))
