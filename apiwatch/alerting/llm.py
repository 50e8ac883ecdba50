"""Optional LLM triage: a short incident report from any OpenAI-compatible chat endpoint.

`url` is either the full chat-completions URL (ending in `/chat/completions`) or the API's
base (`http://host:port/v1`), to which `/chat/completions` is appended. The key goes in an
`Authorization: Bearer` header (none when no key is set, for local models).

`llm_report` never raises and never waits beyond `timeout_s`: a timeout, an HTTP error,
or an answer without text gives None, and the caller keeps its rule-based report. It logs
the failure's kind and status only, never the key, headers or the URL's query.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import aiohttp
import structlog

from apiwatch.alerting.model import AlertNotice

log = structlog.get_logger("apiwatch.alerting.llm")

MAX_ALERTS = 30
MAX_MESSAGE = 300
MAX_REPORT = 4000
MAX_BODY = 256 * 1024

SYSTEM_PROMPT = (
    "You are the on-call assistant of apiwatch, a monitor of third-party APIs. Given alerts, "
    "write a short incident report in plain text, at most 8 lines, with three parts: what is "
    "happening, the likely cause, and what to do now. Be concrete; do not invent facts."
)


def completions_url(url: str) -> str:
    """The chat-completions URL for a base URL or a full one."""
    url = url.rstrip("/")
    return url if url.endswith("/chat/completions") else f"{url}/chat/completions"


def _describe(notices: Sequence[AlertNotice]) -> str:
    lines = [f"{len(notices)} alert(s):"]
    for notice in notices[:MAX_ALERTS]:
        outcome = notice.labels.get("outcome")
        parts = [
            notice.severity.value,
            notice.state.value,
            f"rule={notice.rule}",
            f"provider={notice.provider or '-'}",
            f"category={notice.category or '-'}",
            f"failure={outcome}" if outcome else "",
            f"fired={notice.fired_at.isoformat(timespec='seconds')}",
        ]
        lines.append("- " + " ".join(p for p in parts if p) + f": {notice.message[:MAX_MESSAGE]}")
        if notice.suggested_action:
            lines.append(f"  runbook: {notice.suggested_action[:MAX_MESSAGE]}")
    if len(notices) > MAX_ALERTS:
        lines.append(f"- and {len(notices) - MAX_ALERTS} more")
    return "\n".join(lines)


def _content(payload: Any) -> str | None:
    """The first choice's text, or None when the answer is not a chat completion."""
    try:
        content = payload["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return None
    if not isinstance(content, str) or not content.strip():
        return None
    return content.strip()[:MAX_REPORT]


async def llm_report(
    notices: Sequence[AlertNotice],
    *,
    url: str,
    key: str | None,
    model: str | None,
    timeout_s: float,
    session: aiohttp.ClientSession,
) -> str | None:
    """A short incident report for `notices`, or None (timeout, error, or garbage)."""
    if not notices or not url or not model:
        return None
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    body = {
        "model": model,
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": _describe(notices)},
        ],
        "temperature": 0.2,
        "max_tokens": 400,
    }
    target = completions_url(url)
    try:
        async with asyncio.timeout(timeout_s):
            async with session.post(
                target,
                json=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
                allow_redirects=False,
            ) as response:
                if response.status != 200:
                    log.warning("llm_report_failed", kind="http_status", status=response.status)
                    return None
                raw = await response.content.read(MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            log.warning("llm_report_failed", kind="oversized")
            return None
        text = _content(json.loads(raw))
    except TimeoutError:
        log.warning("llm_report_failed", kind="timeout", timeout_s=timeout_s)
        return None
    except Exception as exc:  # never raise into the sending path (cancellation still does)
        # The exception's text can carry the URL; its type is enough to tell what happened.
        log.warning("llm_report_failed", kind=type(exc).__name__)
        return None
    if text is None:
        log.warning("llm_report_failed", kind="not_a_chat_completion")
    return text
