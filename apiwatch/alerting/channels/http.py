"""One HTTP POST for the HTTP channels (webhook, Slack, PagerDuty), with failures turned into
`DeliveryError`s that say whether to retry and never carry the URL's token.

A session per send: notifications come a few a minute at most, so pooling connections saves
nothing worth a session that would have to outlive the channel and be closed by someone.
Redirects are not followed: a webhook that moved is a configuration error, and following it
would hand the body (and any auth header) to another host.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp

from apiwatch.alerting.channels.base import DeliveryError, retryable_status
from apiwatch.alerting.channels.redact import Redactor
from apiwatch.probe.classify import parse_retry_after

# Enough of an error body to explain it (Slack: "invalid_payload"; PagerDuty: its errors).
_BODY_LIMIT = 2048
_SNIPPET = 300


@dataclass(frozen=True)
class HttpReply:
    status: int
    text: str


async def post(
    *,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout_s: float,
    redact: Redactor,
    what: str,
) -> HttpReply:
    """POST `body` to `url`; return the 2xx reply or raise `DeliveryError`.

    `what` names the channel in messages (e.g. "slack 'ops-slack'").
    """
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(url, data=body, headers=dict(headers), allow_redirects=False) as reply,
        ):
            raw = await reply.content.read(_BODY_LIMIT)
            text = raw.decode("utf-8", errors="replace")
            status = reply.status
            retry_after = reply.headers.get("Retry-After")
    except TimeoutError:
        raise DeliveryError(f"{what}: no response within {timeout_s:g} s", retryable=True) from None
    except aiohttp.InvalidURL:
        raise DeliveryError(f"{what}: the configured URL is invalid", retryable=False) from None
    except ValueError as error:
        # aiohttp refuses some requests outright (e.g. URL credentials plus an Authorization
        # header): the configuration is wrong and stays wrong.
        raise DeliveryError(f"{what}: {redact(str(error))}", retryable=False) from None
    except (aiohttp.ClientError, OSError) as error:
        # `from None`: the cause's traceback would print the request URL.
        raise DeliveryError(
            f"{what}: {type(error).__name__}: {redact(str(error))}", retryable=True
        ) from None
    if 200 <= status < 300:
        return HttpReply(status=status, text=text)
    snippet = redact(" ".join(text.split())[:_SNIPPET])
    detail = f": {snippet}" if snippet else ""
    if 300 <= status < 400:
        raise DeliveryError(
            f"{what}: HTTP {status}, a redirect (not followed; check the URL){detail}",
            retryable=False,
            status=status,
        )
    retryable = retryable_status(status)
    raise DeliveryError(
        f"{what}: HTTP {status}{detail}",
        retryable=retryable,
        status=status,
        retry_after_s=parse_retry_after(retry_after) if retryable else None,
    )
