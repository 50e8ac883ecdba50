"""Unexpected exceptions to Sentry, opt-in with `SENTRY_DSN`.

Off unless the DSN is set. Errors logged with a traceback (a failed job, an API handler's
crash, a worker's task) become Sentry events through sentry-sdk's logging integration.
Before anything leaves the process, `scrub` replaces every secret apiwatch knows (provider
key values, API keys, the admin key, passwords in database and Redis URLs, the LLM key,
alert channel secrets) wherever it appears in the event, and masks anything shaped like an
apiwatch API key or a key in a URL query. Request bodies, cookies and headers are never
sent.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import structlog

log = structlog.get_logger("apiwatch.sentry")

FILTERED = "[Filtered]"
_API_KEY = re.compile(r"\baw_[A-Za-z0-9_\-]{8,}")
_QUERY_SECRET = re.compile(
    r"(?i)([?&](?:api[_-]?key|apikey|key|token|access[_-]?token|auth|secret)=)[^&\s'\"]+"
)
_HEADER_SECRET = re.compile(
    r"(?i)\b(x-api-key|authorization|x-cmc_pro_api_key)\b(['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+"
)


def url_password(url: str | None) -> str | None:
    if not url:
        return None
    try:
        return urlsplit(url).password
    except ValueError:
        return None


class Scrubber:
    """Replaces known secret values, and secret-shaped text, in a Sentry event."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        # Longest first, so a secret that contains another is replaced whole.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, FILTERED)
        value = _API_KEY.sub(FILTERED, value)
        value = _QUERY_SECRET.sub(lambda m: m.group(1) + FILTERED, value)
        return _HEADER_SECRET.sub(lambda m: m.group(1) + m.group(2) + FILTERED, value)

    def walk(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.walk(k): self.walk(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.walk(v) for v in value]
        return value

    def __call__(self, event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        request = event.get("request")
        if isinstance(request, dict):
            for part in ("data", "cookies", "headers"):
                request.pop(part, None)
        return self.walk(event)


def init_sentry(
    dsn: str | None,
    *,
    secrets: Iterable[str | None],
    environment: str | None = None,
    release: str | None = None,
) -> bool:
    """Start sentry-sdk when `dsn` is set; returns whether it is on."""
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.logging import LoggingIntegration

    scrubber = Scrubber(secrets)
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release,
        max_request_body_size="never",
        include_local_variables=False,  # locals hold keys and payloads
        traces_sample_rate=0.0,
        before_send=scrubber,
        before_send_transaction=scrubber,
        # apiwatch logs through structlog, whose records carry the traceback in the event
        # rather than on the record: `_to_sentry` sends those. Unhandled exceptions in API
        # handlers come through sentry-sdk's own Starlette integration.
        integrations=[LoggingIntegration(level=None, event_level=None)],
    )
    processors = list(structlog.get_config()["processors"])
    if _to_sentry not in processors:
        processors.insert(max(len(processors) - 1, 0), _to_sentry)  # before the renderer
        structlog.configure(processors=processors)
    log.info("sentry_enabled", host=urlsplit(dsn).hostname)
    return True


def _to_sentry(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: an error logged with a traceback (a failed job, a crashed task)
    becomes a Sentry event; an error without one becomes a message event."""
    if method not in ("error", "exception", "critical"):
        return event
    import sentry_sdk

    exc_info = event.get("exc_info")
    if exc_info is True or method == "exception":
        exc_info = sys.exc_info()
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("logger", str(event.get("logger", "")))
        scope.set_extra(
            "event", {k: repr(v) for k, v in event.items() if k not in ("exc_info", "exception")}
        )
        if isinstance(exc_info, BaseException) or (
            isinstance(exc_info, tuple) and exc_info and exc_info[0] is not None
        ):
            sentry_sdk.capture_exception(exc_info)
        else:
            sentry_sdk.capture_message(str(event.get("event", "error")), level="error")
    return event


def known_secrets(settings: Any, provider_key_names: Iterable[str]) -> list[str | None]:
    """Every secret value this process holds, for `Scrubber`: provider keys, the admin and
    LLM keys, passwords in the database and Redis URLs, and alert channel options that look
    secret (webhook URLs, tokens, passwords, routing keys)."""
    from apiwatch.alerting.config import load_alert_settings

    out: list[str | None] = list(settings.secrets(provider_key_names).values())
    for secret in (settings.admin_key, settings.llm_key, settings.sentry_dsn):
        out.append(secret.get_secret_value() if secret else None)
    out += [url_password(settings.database_url), url_password(settings.redis_url)]
    try:
        channels = load_alert_settings(user_path=settings.alerts_file).channel_configs()
    except ValueError:
        channels = {}
    for options in channels.values():
        for name, value in options.items():
            if name != "kind" and isinstance(value, str) and _SECRETISH.search(name):
                out.append(value)
    return out


_SECRETISH = re.compile(r"(?i)pass|secret|token|key|url|webhook|auth|dsn")
