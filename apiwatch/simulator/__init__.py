"""Fake upstream providers on 127.0.0.1 with fault injection (docs/simulator.md).

Every catalogue provider is served under `/<provider id><real path>` with the real
provider's shapes, headers and error bodies; `/_control/` sets a scenario per provider.
Point apiwatch at it with `APIWATCH_UPSTREAM_OVERRIDE=http://127.0.0.1:PORT`.

    async with Simulator(scenarios={"binance": Scenario("rate_limited", {})}) as sim:
        ...  # requests to f"{sim.url}/binance/api/v3/ping" get 429, then 418
"""

from apiwatch.simulator.app import create_app
from apiwatch.simulator.scenarios import (
    SCENARIO_NAMES,
    SCENARIO_PARAMS,
    Scenario,
    make_scenario,
    parse_scenario_arg,
)
from apiwatch.simulator.server import Simulator, run_simulator

__all__ = [
    "SCENARIO_NAMES",
    "SCENARIO_PARAMS",
    "Scenario",
    "Simulator",
    "create_app",
    "make_scenario",
    "parse_scenario_arg",
    "run_simulator",
]
