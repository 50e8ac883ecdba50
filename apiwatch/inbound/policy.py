"""Which routes need which key: the access levels and the default policy for apiwatch's
own API. Any app can pass its own `policy(method, path) -> Access` to the middleware."""

from __future__ import annotations

from typing import Literal

# "keyed": a read or admin key, even when the middleware runs with `public_read` (for
# routes such as /metrics that their own setting keeps private).
Access = Literal["public", "read", "keyed", "admin"]

PUBLIC_PATHS = frozenset(
    {
        "/",
        "/healthz",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        "/openapi.json",
        "/metrics",
        "/favicon.ico",
    }
)
PUBLIC_PREFIXES = ("/static/",)
# Key management is admin-only for every method: listing keys reveals who has access.
ADMIN_PREFIXES = ("/api/keys", "/api/config/keys")
READ_METHODS = frozenset({"GET", "HEAD"})


def default_policy(method: str, path: str) -> Access:
    """apiwatch's API: docs, health, metrics and static files are public; under `/api/`
    GET and HEAD need a read key, every other method and key management an admin key.

    Anything else needs a read key: an unknown path is refused, not opened, by default.
    """
    if path.startswith("/api/") or path == "/api":
        if path.startswith(ADMIN_PREFIXES):
            return "admin"
        return "read" if method in READ_METHODS else "admin"
    if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
        return "public"
    return "read"
