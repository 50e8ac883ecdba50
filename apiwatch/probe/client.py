"""The shared HTTP client for probes: one aiohttp session, and reading bodies with a cap.

One session is shared by every probe so connections (and TLS handshakes) are reused; the
body cap bounds what any upstream can make us hold in memory.
"""

from __future__ import annotations

import aiohttp

USER_AGENT = "apiwatch/0.1 (+https://github.com/apiwatch)"


def create_session(*, connection_limit: int = 100) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=connection_limit, ttl_dns_cache=300)
    return aiohttp.ClientSession(
        connector=connector,
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        # Never pick up HTTP(S)_PROXY from the environment: probes go where the catalogue says.
        trust_env=False,
        # Cookies from one provider's response must not ride along on later probes.
        cookie_jar=aiohttp.DummyCookieJar(),
    )


async def read_bounded(response: aiohttp.ClientResponse, max_bytes: int) -> tuple[bytes, bool]:
    """Up to `max_bytes` of the (decompressed) body; True when more was on its way."""
    declared = response.content_length
    if declared is not None and declared > max_bytes:
        return b"", True
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(65536):
        size += len(chunk)
        if size > max_bytes:
            return b"", True
        chunks.append(chunk)
    return b"".join(chunks), False
