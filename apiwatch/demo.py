"""`make demo`: apiwatch against the built-in simulator, with faults on a timetable.

A newcomer sees providers move between online, degraded and offline within a minute, and
reads on the terminal what was injected and what to expect.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import uvicorn

from apiwatch.api.app import create_app
from apiwatch.settings import Settings
from apiwatch.simulator import Scenario, Simulator

# (seconds after start, provider, scenario, what to expect)
TIMETABLE: list[tuple[float, str, Scenario | None, str]] = [
    (20, "binance", Scenario("down", {"status": 503}), "degraded at once, offline after 3 checks"),
    (20, "coingecko", Scenario("slow", {"ms": 2500}), "degraded: slow responses"),
    (20, "etherscan", Scenario("rate_limited", {}), "degraded: HTTP 200 with a NOTOK body"),
    (35, "cryptocompare", Scenario("garbage", {}), "invalid_payload, offline after 3 checks"),
    (35, "tronscan", Scenario("reset", {}), "connection_error (retried), offline"),
    (60, "binance", None, "recovers: online"),
    (60, "coingecko", None, "recovers: online"),
    (75, "etherscan", None, "recovers: online"),
    (75, "cryptocompare", None, "recovers: online"),
    (75, "tronscan", None, "recovers: online"),
]
CYCLE_S = 95.0


async def _timetable(sim: Simulator, say: Callable[[str], None]) -> None:
    healthy = Scenario("healthy", {})
    while True:
        elapsed = 0.0
        for at, provider, scenario, expect in TIMETABLE:
            await asyncio.sleep(at - elapsed)
            elapsed = at
            sim.set_scenario(provider, scenario or healthy)
            name = scenario.name if scenario else "healthy"
            say(f"[bold]demo[/bold] t+{at:>3.0f}s  {provider:<14} → {name:<13} expect: {expect}")
        await asyncio.sleep(CYCLE_S - elapsed)
        say("[bold]demo[/bold] cycle over; all providers healthy again, starting over")


async def run_demo(settings: Settings, *, sim_port: int, say: Callable[[str], None]) -> None:
    async with Simulator(host="127.0.0.1", port=sim_port) as sim:
        say(f"[bold]demo[/bold] simulator on {sim.url} (all providers, demo keys)")
        say(
            f"[bold]demo[/bold] apiwatch on http://{settings.host}:{settings.port}  "
            f"· health checks every {settings.health_interval_s:g}s"
        )
        say(
            f"[bold]demo[/bold] watch: curl -s localhost:{settings.port}/api/providers"
            " | jq '.[]|{id,status,reason}'"
        )
        say(
            "[bold]demo[/bold] read routes are public in the demo (APIWATCH_PUBLIC_READ=true); "
            "admin routes need the admin key printed below on a first start"
        )

        def first_key(key: str) -> None:
            say(f"[bold]demo[/bold] admin key (shown once): X-API-Key: {key}")

        config = uvicorn.Config(
            create_app(settings, on_first_key=first_key),
            host=settings.host,
            port=settings.port,
            log_config=None,
        )
        server = uvicorn.Server(config)
        table = asyncio.create_task(_timetable(sim, say))
        try:
            await server.serve()
        finally:
            table.cancel()
