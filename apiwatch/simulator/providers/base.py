"""What every simulated provider has in common: the request context, the reply, and the
base class whose hooks each provider overrides with its real shapes and error bodies.

A provider answers in data (`Reply`), not in aiohttp responses, so fault scenarios can
reuse a healthy answer (truncate it for `garbage`) and headers can be added in one place.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from aiohttp import web

from apiwatch.simulator.market import View
from apiwatch.simulator.scenarios import Scenario

if TYPE_CHECKING:
    from apiwatch.simulator.state import SimState

JSON = "application/json"
HTML = "text/html; charset=utf-8"


@dataclass
class Reply:
    """One answer: a JSON payload, or raw text (or bytes) with its content type."""

    status: int = 200
    payload: Any = None
    text: str | bytes | None = None
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> bytes:
        if isinstance(self.text, bytes):
            return self.text
        if self.text is not None:
            return self.text.encode()
        # Compact separators, as the real APIs send; keeps `oversized` arithmetic honest.
        return json.dumps(self.payload, separators=(",", ":")).encode()


@dataclass
class Ctx:
    """One request as a provider sees it: the path below its prefix, and its view of the world."""

    request: web.Request
    path: str
    view: View
    scenario: Scenario
    state: SimState

    @property
    def query(self) -> Any:
        return self.request.query

    def arg(self, name: str, default: str | None = None) -> str | None:
        value = self.request.query.get(name)
        return value if value not in (None, "") else default

    def int_arg(self, name: str, default: int, *, low: int, high: int) -> int:
        try:
            value = int(self.request.query.get(name, default))
        except ValueError:
            value = default
        return max(low, min(high, value))


def reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def status_page(status: int, footer: str = "nginx") -> str:
    """The bare proxy error page nginx and Cloudflare send when the origin is unhappy."""
    title = f"{status} {reason(status)}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>{footer}</center>\r\n"
        "</body>\r\n</html>\r\n"
    )


class Provider:
    """A provider with no quirks. Subclasses set `routes`, `key_sources` and error hooks.

    `key_sources` lists every way the real API accepts a key — `("header", name, prefix)` or
    `("query", name, "")` — which may be more than the catalogue uses.
    """

    routes: dict[str, str] = {}
    key_sources: tuple[tuple[str, str, str], ...] = ()
    default_key_required = False
    server = "nginx"
    gateway_footer = "cloudflare"

    def __init__(self, provider_id: str, *, key_required: bool | None = None) -> None:
        self.id = provider_id
        self.key_required = self.default_key_required if key_required is None else key_required

    # -- request handling -------------------------------------------------------------------

    def api_key(self, request: web.Request) -> str | None:
        for where, name, prefix in self.key_sources:
            raw = request.headers.get(name) if where == "header" else request.query.get(name)
            if raw is None:
                continue
            if prefix and raw[: len(prefix)].lower() == prefix.lower():
                raw = raw[len(prefix) :]
            if raw.strip():
                return raw.strip()
        return None

    def find_route(self, path: str) -> Callable[[Ctx], Reply] | None:
        name = self.routes.get(path)
        return getattr(self, name) if name else None

    def weight(self, ctx: Ctx) -> int:
        return 1

    async def respond(self, ctx: Ctx) -> Reply:
        """The healthy answer: the real shape, or the provider's own 404 / missing-key error."""
        route = self.find_route(ctx.path)
        if route is None:
            return self.not_found(ctx)
        if self.key_required and self.api_key(ctx.request) is None:
            return self.missing_key(ctx)
        return route(ctx)

    def extra_headers(self, ctx: Ctx, reply: Reply) -> dict[str, str]:
        """Headers the provider sends on every response, errors included."""
        return {}

    # -- error shapes, overridden per provider ----------------------------------------------

    def not_found(self, ctx: Ctx) -> Reply:
        return Reply(404, {"error": "Not Found", "path": ctx.path})

    def missing_key(self, ctx: Ctx) -> Reply:
        return Reply(401, {"error": "API key missing"})

    def auth_failure(self, ctx: Ctx) -> Reply:
        return Reply(401, {"error": "Invalid API key"})

    def rate_limited(self, ctx: Ctx) -> Reply:
        retry = str(ctx.scenario.params.get("retry_after", 60))
        return Reply(429, {"error": "Too Many Requests"}, headers={"Retry-After": retry})

    def server_error(self, ctx: Ctx, status: int) -> Reply:
        return Reply(status, {"error": reason(status)})

    def error_code(self, ctx: Ctx, code: int) -> Reply:
        """A business error code inside a 200, for the venues that send them; a provider
        without such codes answers a plain 500."""
        return self.server_error(ctx, 500)

    def html_error(self, ctx: Ctx, status: int | None) -> Reply:
        status = status or 502
        return Reply(status, text=status_page(status, self.gateway_footer), content_type=HTML)
