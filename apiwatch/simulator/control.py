"""The control endpoint under `/_control/`: read and set scenarios, reset, statistics.

Every error is JSON `{"error": "..."}` saying what was wrong and what is allowed, so a test
or a person with curl can fix the request without reading the source.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from apiwatch.simulator.scenarios import HEALTHY, SCENARIO_NAMES, describe_scenarios, from_json
from apiwatch.simulator.state import SimState


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def add_routes(app: web.Application, key: web.AppKey[SimState]) -> None:
    """Mount the control routes; `key` finds the app's `SimState`."""

    def state_of(request: web.Request) -> SimState:
        return request.app[key]

    def unknown_provider(state: SimState, provider: str) -> web.Response:
        return _error(404, f"unknown provider {provider!r}", providers=list(state.provider_ids))

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def list_scenarios(request: web.Request) -> web.Response:
        return web.json_response(state_of(request).scenarios_json())

    async def get_scenario(request: web.Request) -> web.Response:
        state, provider = state_of(request), request.match_info["provider"]
        if provider not in state.scenarios:
            return unknown_provider(state, provider)
        return web.json_response(state.scenarios[provider].to_json())

    async def put_scenario(request: web.Request) -> web.Response:
        state, provider = state_of(request), request.match_info["provider"]
        if provider not in state.scenarios:
            return unknown_provider(state, provider)
        try:
            body = json.loads(await request.read() or b"null")
        except ValueError as exc:
            return _error(400, f"body is not valid JSON: {exc}")
        try:
            scenario = state.set_scenario(provider, from_json(body))
        except ValueError as exc:
            return _error(400, str(exc), scenarios=list(SCENARIO_NAMES), help=describe_scenarios())
        return web.json_response(scenario.to_json())

    async def delete_scenario(request: web.Request) -> web.Response:
        state, provider = state_of(request), request.match_info["provider"]
        if provider not in state.scenarios:
            return unknown_provider(state, provider)
        return web.json_response(state.set_scenario(provider, HEALTHY).to_json())

    async def reset(request: web.Request) -> web.Response:
        state = state_of(request)
        state.reset()
        return web.json_response({"ok": True, "scenarios": state.scenarios_json()})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(state_of(request).stats())

    app.router.add_get("/_control/health", health)
    app.router.add_get("/_control/scenarios", list_scenarios)
    app.router.add_get("/_control/scenarios/{provider}", get_scenario)
    app.router.add_put("/_control/scenarios/{provider}", put_scenario)
    app.router.add_delete("/_control/scenarios/{provider}", delete_scenario)
    app.router.add_post("/_control/reset", reset)
    app.router.add_get("/_control/stats", stats)
