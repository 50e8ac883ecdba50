"""Running the simulator: `Simulator` for tests and benchmarks (in-process, ephemeral port),
`run_simulator` for `apiwatch simulate` (blocking until Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from types import TracebackType
from typing import Any

from aiohttp import web

from apiwatch.simulator.app import STATE, create_app
from apiwatch.simulator.scenarios import HEALTHY, Scenario
from apiwatch.simulator.state import SimState

# Hanging and sleeping handlers wake on shutdown, so this only bounds a stuck oversized send.
_SHUTDOWN_TIMEOUT_S = 5.0


class Simulator:
    """Fake upstream providers on one port. `port=0` picks a free port; read `sim.port` or
    `sim.url` after `start()`. Usable as `async with Simulator() as sim:`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        scenarios: dict[str, Scenario] | None = None,
        providers: list[str] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self._app = create_app(scenarios=scenarios, providers=providers)
        self._runner: web.AppRunner | None = None

    @property
    def state(self) -> SimState:
        return self._app[STATE]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def providers(self) -> list[str]:
        return list(self.state.provider_ids)

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("simulator already started")
        # Cancelling handlers on disconnect ends `timeout` hangs as soon as the client quits.
        runner = web.AppRunner(
            self._app,
            handler_cancellation=True,
            access_log=None,
            shutdown_timeout=_SHUTDOWN_TIMEOUT_S,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            self.state.closing.set()
            await runner.cleanup()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def set_scenario(self, provider: str, scenario: Scenario) -> Scenario:
        """Apply a scenario in-process; returns it with defaults filled in.

        Raises KeyError for an unknown provider, ValueError for a bad scenario.
        """
        return self.state.set_scenario(provider, scenario)

    def clear_scenario(self, provider: str) -> Scenario:
        return self.state.set_scenario(provider, HEALTHY)

    def scenarios(self) -> dict[str, dict[str, Any]]:
        return self.state.scenarios_json()

    def reset(self) -> None:
        """All providers healthy, every counter zeroed."""
        self.state.reset()

    def stats(self) -> dict[str, Any]:
        return self.state.stats()


def run_simulator(*, host: str, port: int, scenarios: dict[str, Scenario]) -> None:
    """Serve until Ctrl-C or SIGTERM. Raises ValueError for a scenario that does not fit."""
    simulator = Simulator(host=host, port=port, scenarios=scenarios)

    async def serve() -> None:
        await simulator.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        # Both explicitly: a process started in the background (a suite, CI, `cmd &`) may
        # inherit SIGINT as ignored, and then Ctrl-C/kill -INT would not stop it otherwise.
        with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
        changed = {p: s.name for p, s in simulator.state.scenarios.items() if s.name != "healthy"}
        print(
            f"apiwatch simulator listening on {simulator.url} "
            f"({len(simulator.providers)} providers, e.g. {simulator.url}/coingecko/api/v3/ping; "
            f"control at {simulator.url}/_control/scenarios"
            + (f"; scenarios {changed}" if changed else "")
            + ")",
            flush=True,
        )
        try:
            await stop.wait()
        finally:
            await simulator.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
