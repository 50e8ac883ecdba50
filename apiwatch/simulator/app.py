"""The aiohttp application: routes `/<provider id><real path>` to that provider, applies the
provider's current scenario, counts every request, and mounts the control endpoint.
"""

from __future__ import annotations

import functools
import random

from aiohttp import web

from apiwatch.catalogue.loader import load_catalogue
from apiwatch.simulator import control
from apiwatch.simulator.faults import (
    abort_connection,
    corrupt,
    hang,
    sleep_unless_closing,
    stream_oversized,
)
from apiwatch.simulator.market import View
from apiwatch.simulator.providers import Ctx, Provider, Reply, build_provider
from apiwatch.simulator.providers.base import JSON
from apiwatch.simulator.scenarios import Scenario
from apiwatch.simulator.state import SimState

STATE = web.AppKey("apiwatch_simulator_state", SimState)
PROVIDERS = web.AppKey("apiwatch_simulator_providers", dict[str, Provider])


@functools.cache
def _catalogue_auth() -> dict[str, bool]:
    """Provider id → whether its catalogue entry requires a key. Cached: validating the YAML
    costs tens of milliseconds, and tests start many simulators."""
    return {p.id: p.auth.required for p in load_catalogue().providers.values()}


def _build_providers(provider_ids: list[str] | None) -> dict[str, Provider]:
    """One player per provider; whether a key is required comes from the catalogue."""
    required = _catalogue_auth()
    ids = list(required) if provider_ids is None else list(provider_ids)
    if len(set(ids)) != len(ids) or not ids:
        raise ValueError(f"providers must be a non-empty list of distinct ids, got {ids!r}")
    return {p: build_provider(p, key_required=required.get(p)) for p in ids}


def create_app(
    *,
    scenarios: dict[str, Scenario] | None = None,
    providers: list[str] | None = None,
) -> web.Application:
    """The simulator as an aiohttp app. Raises ValueError for a scenario naming a provider
    that is not served or carrying bad parameters."""
    players = _build_providers(providers)
    state = SimState(list(players))
    for provider_id, scenario in (scenarios or {}).items():
        try:
            state.set_scenario(provider_id, scenario)
        except KeyError as exc:
            raise ValueError(exc.args[0]) from None
    app = web.Application()
    app[STATE] = state
    app[PROVIDERS] = players
    control.add_routes(app, STATE)
    app.router.add_route("*", "/{provider}", handle_provider)
    app.router.add_route("*", "/{provider}/{tail:.*}", handle_provider)
    app.on_shutdown.append(_wake_sleepers)
    return app


_CONTROL = [
    "GET /_control/health",
    "GET /_control/scenarios",
    "GET|PUT|DELETE /_control/scenarios/{provider}",
    "POST /_control/reset",
    "GET /_control/stats",
]


async def _wake_sleepers(app: web.Application) -> None:
    app[STATE].closing.set()


async def handle_provider(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    provider_id = request.match_info["provider"]
    provider = request.app[PROVIDERS].get(provider_id)
    if provider_id == "_control":
        return web.json_response(
            {
                "error": f"no control endpoint {request.method} {request.path}",
                "endpoints": _CONTROL,
            },
            status=404,
        )
    if provider is None:
        return web.json_response(
            {
                "error": f"unknown provider {provider_id!r}",
                "providers": list(request.app[PROVIDERS]),
            },
            status=404,
        )
    path = "/" + request.match_info.get("tail", "")
    state.count(provider_id, path)
    scenario = state.scenarios[provider_id]
    params = scenario.params
    view = View.current(
        age_s=params["age_s"] if scenario.name == "stale" else 0.0,
        skew_pct=params["pct"] if scenario.name == "divergent" else 0.0,
    )
    ctx = Ctx(
        request=request,
        path=path,
        view=view,
        scenario=scenario,
        state=state,
    )
    state.weight[provider_id].add(provider.weight(ctx))

    if scenario.name == "timeout":
        return await hang(request, state)
    if scenario.name == "reset":
        return abort_connection(request)
    if scenario.name == "slow":
        await sleep_unless_closing(state, params["ms"] / 1000)
    if scenario.name == "oversized":
        headers = _headers(provider, ctx, Reply(200))
        return await stream_oversized(request, params["bytes"], headers)
    reply = await _reply(provider, ctx)
    return web.Response(
        status=reply.status, body=reply.body(), headers=_headers(provider, ctx, reply)
    )


async def _reply(provider: Provider, ctx: Ctx) -> Reply:
    scenario = ctx.scenario
    name = scenario.name
    if name == "flaky" and random.random() < scenario.params["p"]:
        return provider.server_error(ctx, 500)
    if name == "down":
        return provider.server_error(ctx, scenario.params["status"])
    if name == "rate_limited":
        return provider.rate_limited(ctx)
    if name == "auth_failure":
        return provider.auth_failure(ctx)
    if name == "error_code":
        return provider.error_code(ctx, scenario.params["code"])
    if name == "html_error":
        return provider.html_error(ctx, scenario.params["status"] or None)
    reply = await provider.respond(ctx)
    if name == "garbage":
        return Reply(200, text=corrupt(reply.body()), content_type=JSON)
    return reply


def _headers(provider: Provider, ctx: Ctx, reply: Reply) -> dict[str, str]:
    headers = {"Content-Type": reply.content_type, "Server": provider.server}
    headers.update(reply.headers)
    headers.update(provider.extra_headers(ctx, reply))
    return headers
