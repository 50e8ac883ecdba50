"""`make demo`: apiwatch against the built-in simulator, with faults on a timetable.

A newcomer sees providers move between online, degraded and offline within a minute, and
reads on the terminal what was injected, what to expect and by when. Every expectation is
data (`Step.expect`), printed from that data and checked by a test that runs this
timetable, so what the demo promises is what it does (at the default 5 s interval).
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

import uvicorn

from apiwatch.api.app import create_app
from apiwatch.api.server import server_options
from apiwatch.catalogue.loader import load_catalogue
from apiwatch.domain import Status
from apiwatch.runtime.preflight import mask_url
from apiwatch.settings import Settings
from apiwatch.simulator import Scenario, Simulator

DEMO_INTERVAL_S = 5.0


@dataclass(frozen=True)
class Step:
    """At `at` seconds, `provider` gets `scenario` (None: healthy again); then each
    (status, within) of `expect` holds within that many seconds, and with `book_check`
    (check, within) GET /api/data/books lists that check failing for the provider within
    that many seconds (a collection's verdict, not a status). `why` is for the reader."""

    at: float
    provider: str
    scenario: Scenario | None
    expect: tuple[tuple[Status, float], ...]
    why: str
    book_check: tuple[str, float] | None = None

    def describe(self) -> str:
        name = self.scenario.name if self.scenario else "healthy"
        promises = [f"{status.value} within {within:g} s" for status, within in self.expect]
        if self.book_check is not None:
            check, within = self.book_check
            promises.append(f"book check {check} failing within {within:g} s")
        promises_text = ", then ".join(promises) or "no status change"
        return (
            f"t+{self.at:>3.0f}s  {self.provider:<14} → {name:<13} expect: {promises_text} "
            f"({self.why})"
        )


_D, _O, _ON = Status.DEGRADED, Status.OFFLINE, Status.ONLINE
# Timings at the 5 s interval: a check sees a fault within 5 s; offline takes 3 failed
# checks; after 5 failed checks the circuit breaker opens and lets a trial request through
# 30 s later; a recovered provider is online after 3 good checks; a rate-limited key rests
# 60 s. Each bound adds a check or two of slack for the probe's own time.
TIMETABLE: list[Step] = [
    # Held longer than a market collection can take to come round, so a collection sees it;
    # what it promises is the collection's verdict, not a status (the health checks in
    # between keep Bybit online). The first collection comes within 5 s of the start, before
    # or at the fault; the scheduler then moves the job onto its spread grid, so the second
    # comes between half an interval and one and a half after the first: by 95 s at the
    # 60 s interval. Within 100 s of the fault leaves ten seconds of slack and ends before
    # the fault does (110 s). The timetable starts once apiwatch answers.
    Step(
        5,
        "bybit",
        Scenario("crossed_book"),
        (),
        "at its next collection: invalid_payload 'book_integrity: crossed', a "
        "book_integrity alert, GET /api/data/books",
        book_check=("crossed", 100),
    ),
    Step(20, "binance", Scenario("down", {"status": 503}), ((_D, 12), (_O, 25)), "HTTP 503"),
    Step(20, "coingecko", Scenario("slow", {"ms": 2500}), ((_D, 15),), "slow responses"),
    Step(20, "etherscan", Scenario("rate_limited", {}), ((_D, 12),), "HTTP 200 with a NOTOK body"),
    Step(35, "cryptocompare", Scenario("garbage", {}), ((_D, 12), (_O, 25)), "invalid_payload"),
    Step(35, "tronscan", Scenario("reset", {}), ((_D, 12), (_O, 25)), "connection_error"),
    Step(60, "binance", None, ((_ON, 45),), "after the circuit breaker's trial"),
    Step(60, "coingecko", None, ((_ON, 20),), "3 good checks"),
    Step(60, "etherscan", None, ((_ON, 50),), "once its keys have rested 60 s"),
    Step(75, "cryptocompare", None, ((_ON, 45),), "after the circuit breaker's trial"),
    Step(75, "tronscan", None, ((_ON, 45),), "after the circuit breaker's trial"),
    Step(110, "bybit", None, (), "its book passes every check again"),
]
# Long enough for every promise above before the next cycle's first fault.
CYCLE_S = 125.0


def demo_keys() -> dict[str, str]:
    """A made-up value for every provider key variable, so every provider is probed."""
    return {
        name: f"demo-{name.lower().replace('_', '-')}-0000"
        for spec in load_catalogue().providers.values()
        for name in spec.auth.keys
    }


def set_demo_keys() -> None:
    for name, value in demo_keys().items():
        os.environ.setdefault(name, value)


async def run_timetable(
    sim: Simulator, say: Callable[[str], None], *, cycles: int | None = None
) -> None:
    healthy = Scenario("healthy", {})
    done = 0
    while cycles is None or done < cycles:
        elapsed = 0.0
        for step in TIMETABLE:
            await asyncio.sleep(step.at - elapsed)
            elapsed = step.at
            sim.set_scenario(step.provider, step.scenario or healthy)
            say(f"[bold]demo[/bold] {step.describe()}")
        await asyncio.sleep(CYCLE_S - elapsed)
        done += 1
        say("[bold]demo[/bold] cycle over; starting over")


class _Server(uvicorn.Server):
    """uvicorn's server, telling when it has started and listens."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.listening.set()


async def run_demo(
    settings: Settings,
    *,
    sim_port: int,
    say: Callable[[str], None],
    stop: asyncio.Event | None = None,
) -> None:
    """Simulator, apiwatch and the timetable, until Ctrl-C (or until `stop` is set)."""
    async with Simulator(host="127.0.0.1", port=sim_port) as sim:
        say(f"[bold]demo[/bold] simulator on {sim.url} (all providers, demo keys)")
        say(
            f"[bold]demo[/bold] apiwatch on http://{settings.host}:{settings.port}  "
            f"· health checks every {settings.health_interval_s:g}s"
        )
        say(
            f"[bold]demo[/bold] dashboard: http://localhost:{settings.port}/ (status page: /status)"
        )
        say(
            f"[bold]demo[/bold] watch: curl -s localhost:{settings.port}/api/providers"
            " | jq '.[]|{id,status,reason}'"
        )
        say(
            "[bold]demo[/bold] read routes are public in the demo (APIWATCH_PUBLIC_READ=true); "
            "admin routes need the admin key printed below on a first start; later, make one "
            f"with: DATABASE_URL='{mask_url(settings.database_url)}' apiwatch keys create "
            "--name me --scope admin"
        )
        if settings.health_interval_s != DEMO_INTERVAL_S:
            say(
                f"[bold]demo[/bold] the times below hold at a {DEMO_INTERVAL_S:g} s interval; "
                "yours differs, so they will be off"
            )

        def first_key(key: str) -> None:
            say(f"[bold]demo[/bold] admin key (shown once): X-API-Key: {key}")

        config = uvicorn.Config(
            create_app(settings, on_first_key=first_key), **server_options(settings)
        )
        server = _Server(config)

        async def timetable_once_started() -> None:
            # The printed times count from when apiwatch answers, not from when it began to
            # start: migrations on a busy machine can take seconds, and the first collection
            # is planned from the runtime's start.
            await server.listening.wait()
            await run_timetable(sim, say)

        table = asyncio.create_task(timetable_once_started())

        async def stop_when_asked() -> None:
            if stop is not None:
                await stop.wait()
                server.should_exit = True

        stopper = asyncio.create_task(stop_when_asked())
        try:
            await server.serve()
        finally:
            table.cancel()
            stopper.cancel()
