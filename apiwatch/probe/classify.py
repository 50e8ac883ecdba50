"""Turns one HTTP response (or the lack of one) into an Outcome with a reason.

The order matters and encodes what providers really do: a provider's own rate-limit signal
wins over the HTTP status (Etherscan and CryptoCompare say it in a 200 body, TronScan and
Bybit in a 403), then its own "busy" signal (OKX 50013 arrives with a 429 but is overload,
not our quota), then its own invalid-key signal, then the status code, then the payload
checks.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from aiohttp.http_exceptions import HttpProcessingError

from apiwatch.catalogue.schema import EndpointSpec, ProviderSpec
from apiwatch.domain import Outcome
from apiwatch.probe.assertions import _MISSING, check_failure, signal_matches

_MESSAGE_PATHS: tuple[tuple[str, ...], ...] = (
    ("status", "error_message"),
    ("error", "status", "error_message"),
    ("Message",),
    # Etherscan puts "NOTOK" in message and the real reason in result.
    ("result",),
    ("message",),
    ("msg",),
    ("retMsg",),
    ("info",),
    ("detail",),
    ("error",),
    ("metadata", "error"),
)
_HTML = re.compile(rb"^\s*(<!doctype html|<html)", re.IGNORECASE)
_TITLE = re.compile(r"<title>([^<]{1,120})</title>", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Classified:
    outcome: Outcome
    reason: str
    payload: Any = None
    retry_after_s: float | None = None


def provider_message(document: Any) -> str | None:
    """The human message a provider put in its body, wherever that provider puts it."""
    if not isinstance(document, dict):
        return None
    for path in _MESSAGE_PATHS:
        value: Any = document
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, str) and value.strip():
            return value.strip()[:200]
    return None


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Retry-After in seconds, from either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):  # IndexError: some malformed dates
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _parse_body(body: bytes) -> tuple[Any, str | None]:
    """(document, None) when the body is JSON, else (_MISSING, why not)."""
    if not body.strip():
        return _MISSING, "empty body"
    if _HTML.match(body[:512]):
        title = _TITLE.search(body[:4096].decode("utf-8", "replace"))
        return (
            _MISSING,
            f"HTML page instead of JSON ({title.group(1).strip() if title else 'no title'})",
        )
    try:
        return json.loads(body), None
    except RecursionError:
        return _MISSING, "body is not usable JSON (nested too deeply)"
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, over-long integers
        return _MISSING, f"body is not valid JSON ({exc.__class__.__name__}: {str(exc)[:80]})"


def classify_response(
    *,
    provider: ProviderSpec,
    endpoint: EndpointSpec,
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    latency_ms: float,
    truncated_at: int | None = None,
    location: str = "",
) -> Classified:
    if truncated_at is not None and 200 <= status < 300:
        return Classified(
            Outcome.INVALID_PAYLOAD, f"body larger than {truncated_at} bytes; cut off unread"
        )
    # An oversized error page is still classified by its status; its body is not read.
    document, not_json = _parse_body(body) if truncated_at is None else (_MISSING, "cut off")
    text = body[:65536].decode("utf-8", "replace")
    message = provider_message(document)
    said = f": {message}" if message else (f" ({not_json})" if not_json and status >= 400 else "")
    retry_after = parse_retry_after(headers.get("retry-after"))

    for signal in provider.rate_limited_when:
        if signal_matches(signal, status=status, document=document, text=text):
            wait = retry_after
            if signal.block_s is not None:
                wait = max(wait or 0.0, signal.block_s)
            label = "IP banned" if signal.block_s is not None else "rate limited"
            return Classified(Outcome.RATE_LIMITED, f"{label} (HTTP {status}){said}", None, wait)
    for signal in provider.server_error_when:
        if signal_matches(signal, status=status, document=document, text=text):
            return Classified(
                Outcome.SERVER_ERROR, f"provider busy (HTTP {status}){said}", None, retry_after
            )
    if status in (429, 418):
        label = "IP banned" if status == 418 else "rate limited"
        return Classified(Outcome.RATE_LIMITED, f"{label} (HTTP {status}){said}", None, retry_after)
    for signal in provider.auth_error_when:
        if signal_matches(signal, status=status, document=document, text=text):
            return Classified(Outcome.AUTH_ERROR, f"key rejected (HTTP {status}){said}")
    if status in (401, 403):
        return Classified(Outcome.AUTH_ERROR, f"key rejected (HTTP {status}){said}")
    if status >= 500:
        return Classified(Outcome.SERVER_ERROR, f"HTTP {status}{said}", None, retry_after)
    if 300 <= status < 400:
        where = f" to {location.split('?')[0][:120]}" if location else ""
        return Classified(
            Outcome.CLIENT_ERROR,
            f"HTTP {status} redirect{where}, not followed: update the catalogue's URL",
        )
    if status >= 400 or status < 200:
        return Classified(Outcome.CLIENT_ERROR, f"HTTP {status}{said}")

    for check in endpoint.expect:
        failure = check_failure(
            check,
            status=status,
            document=document,
            body_is_json=not_json is None,
            latency_ms=latency_ms,
        )
        if failure is not None:
            detail = f" ({not_json})" if not_json and "not JSON" in failure else ""
            extra = f"; provider says: {message}" if message else ""
            return Classified(Outcome.INVALID_PAYLOAD, f"{failure}{detail}{extra}")
    if not_json is not None and status != 204:
        return Classified(Outcome.INVALID_PAYLOAD, not_json)

    payload = None if document is _MISSING else document
    slow_ms = _slow_threshold(provider, endpoint)
    if latency_ms > slow_ms:
        return Classified(
            Outcome.SLOW, f"{latency_ms:.0f} ms over the {slow_ms:.0f} ms threshold", payload
        )
    return Classified(Outcome.OK, "", payload)


def _slow_threshold(provider: ProviderSpec, endpoint: EndpointSpec) -> float:
    for check in endpoint.expect:
        if check.max_latency_ms is not None:
            return check.max_latency_ms
    return endpoint.slow_ms or provider.slow_ms


def classify_exception(exc: BaseException) -> Classified:
    """An exception from sending or reading → timeout or connection_error, never a crash."""
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return Classified(Outcome.TIMEOUT, "no complete response within the timeout")
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return Classified(Outcome.CONNECTION_ERROR, "DNS lookup failed")
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | ssl.SSLError):
        return Classified(Outcome.CONNECTION_ERROR, "TLS handshake failed")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return Classified(
            Outcome.CONNECTION_ERROR,
            f"cannot connect ({exc.os_error.strerror or exc.os_error.__class__.__name__})",
        )
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return Classified(
            Outcome.CONNECTION_ERROR, "server closed the connection without a response"
        )
    if isinstance(exc, aiohttp.ClientPayloadError):
        return Classified(Outcome.CONNECTION_ERROR, "connection broke while reading the body")
    if isinstance(exc, aiohttp.ClientOSError) and exc.strerror:
        return Classified(Outcome.CONNECTION_ERROR, exc.strerror.lower())
    if isinstance(exc, aiohttp.ClientResponseError | HttpProcessingError):
        # The parser's error, raised from the response or (a later packet) from its body.
        return Classified(Outcome.INVALID_PAYLOAD, f"malformed HTTP response ({exc.message})")
    if isinstance(exc, aiohttp.ClientError | OSError):
        return Classified(Outcome.CONNECTION_ERROR, exc.__class__.__name__)
    return Classified(Outcome.CONNECTION_ERROR, f"unexpected {exc.__class__.__name__}")
