"""Keeping channel secrets out of errors and logs.

Webhook URLs carry their token in the path (Slack: `/services/T…/B…/<token>`) or the query,
URLs may carry basic-auth credentials, and channels hold SMTP passwords, PagerDuty routing
keys and HMAC secrets. Everything a channel puts in an error or a log line goes through a
`Redactor` built from that channel's secrets; any URL left in the text is cut back to
`scheme://host[:port]/…`, so even a secret the redactor was not told about does not leave
with a URL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

MASK = "***"
# Shorter "secrets" would mangle ordinary words in messages and protect nothing.
MIN_SECRET_LEN = 3
# Path segments this long look like tokens; shorter ones ("hooks", "v2") are kept readable.
_TOKEN_SEGMENT_LEN = 12
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>()\[\]{},]+")


def redact_url(url: str) -> str:
    """`scheme://host[:port]/…`: the URL with path, query, fragment and credentials dropped."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return MASK
    if not parts.scheme:
        return MASK
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    hidden = parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc
    return f"{parts.scheme}://{netloc}/{'…' if hidden else ''}"


def scrub_urls(text: str) -> str:
    """Every URL in `text` cut back to `scheme://host[:port]/…`."""
    return _URL.sub(lambda match: redact_url(match.group(0)), text)


class Redactor:
    """Masks one channel's secrets (and every URL) in text bound for errors and logs."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets: set[str] = set()
        self.add(*secrets)

    def add(self, *secrets: str | None) -> None:
        for secret in secrets:
            if not secret or len(secret) < MIN_SECRET_LEN:
                continue
            # Servers echo what they were sent, often percent-encoded.
            self._secrets.update({secret, quote(secret, safe=""), quote_plus(secret)})

    def add_url(self, url: str) -> None:
        """The URL and each part of it that can carry a token."""
        self.add(url)
        try:
            parts = urlsplit(url)
            password = parts.password
            username = parts.username
        except ValueError:
            return
        self.add(password, username, parts.query, parts.fragment)
        if parts.path not in ("", "/"):
            self.add(parts.path)
            self.add(*(s for s in parts.path.split("/") if len(s) >= _TOKEN_SEGMENT_LEN))
        self.add(*(value for _, value in parse_qsl(parts.query, keep_blank_values=False)))

    def __call__(self, text: str) -> str:
        text = scrub_urls(text)
        # Longest first, so a secret containing another is masked whole.
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, MASK)
        return text
