"""What the middleware reports per request (`UsageRecord`) and how it names the route: the
route template (`/api/providers/{provider_id}`), never the raw path, whose values are
unbounded (ids, typos, scanners) and would make every chart and roll-up explode."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from starlette.routing import Host, Match, Mount

UNMATCHED = "<unmatched>"


class UsageRecord(NamedTuple):
    """One request: who (key id and name, None without a key), which route template, how
    it went and how long it took, when (UTC), from which client address, and whether it
    got past authentication and limits (`authorized`).

    Immutable like a frozen dataclass, but a tuple: one is made per request, and a frozen
    dataclass sets each of its ten fields through `object.__setattr__` (about five times
    the cost)."""

    key_id: int | None
    key_name: str | None
    route: str
    method: str
    status: int
    latency_ms: float
    at: datetime
    client: str | None
    authorized: bool
    # Why it was refused (`missing_key`, `invalid_key`, `inactive_key`, `admin_required`,
    # `rate_limited_minute` (`_hour`, `_day`), `failed_auth_throttled`, `limiter_unavailable`,
    # `key_check_unavailable`); None when it was not.
    refusal: str | None = None


def _match(routes: Sequence[Any], scope: dict[str, Any], prefix: str) -> str | None:
    """The template of the route Starlette's router would pick for `scope`, or None."""
    partial: str | None = None
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None and not hasattr(route, "path"):
            # FastAPI ≥ 0.13x keeps `include_router` routers whole (`_IncludedRouter`); their
            # routes carry the router's own prefix, and the include prefix comes on top.
            extra = getattr(getattr(route, "include_context", None), "prefix", "") or ""
            path = scope.get("path", "")
            if extra and not path.startswith(extra):
                continue
            inner_scope = {**scope, "path": path[len(extra) :]} if extra else scope
            found = _match(inner.routes, inner_scope, prefix + extra)
            if found is not None:
                return found
            continue
        match, child = route.matches(scope)
        if match is Match.NONE:
            continue
        if isinstance(route, Mount | Host):
            inner_prefix = prefix + route.path if isinstance(route, Mount) else prefix
            inner_routes = route.routes
            if inner_routes:
                return _match(inner_routes, {**scope, **child}, inner_prefix)
            return inner_prefix + "/{path}"  # a mounted app (static files, a sub-app)
        if match is Match.FULL:
            return prefix + route.path  # type: ignore[no-any-return]
        if partial is None:  # e.g. the right path with the wrong method: a 405
            partial = prefix + route.path
    return partial


def resolve_route(scope: dict[str, Any], app: Any) -> str:
    """The route template for a request that was not routed (refused before the app ran):
    match it against the routes of the Starlette app it is for."""
    target = scope.get("app") or app
    routes = getattr(getattr(target, "router", target), "routes", None)
    if not routes:
        return UNMATCHED
    return _match(routes, scope, "") or UNMATCHED


def routed_template(scope: dict[str, Any], root_path: str, app: Any) -> str:
    """The route template after Starlette's router handled the request (it leaves the
    route in `scope["route"]`). Inside a mount the route's path is relative to it, so
    the whole chain is matched again from the top."""
    route = scope.get("route")
    if route is None:
        return UNMATCHED
    if isinstance(route, Mount) or scope.get("root_path", "") != root_path:
        return resolve_route({**scope, "root_path": root_path}, app)
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED
