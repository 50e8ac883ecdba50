"""Fixtures for collector tests: the simulator on an ephemeral port, and the probe engine
pointed at it, so collectors see exactly the payloads a running apiwatch would."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from apiwatch.budget.keys import Key, KeyPool
from apiwatch.catalogue.loader import load_catalogue
from apiwatch.domain import Outcome
from apiwatch.probe.client import create_session
from apiwatch.probe.engine import ProbeEngine
from apiwatch.simulator import Simulator

CATALOGUE = load_catalogue()
SECRET = "SECRETKEY-0123456789abcdef"

Fetch = Callable[[str, str], Awaitable[Any]]


def pools() -> dict[str, KeyPool]:
    return {
        spec.id: KeyPool(spec.id, [Key(name, f"{SECRET}-{name}") for name in spec.auth.keys])
        for spec in CATALOGUE.providers.values()
    }


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(port=0) as simulator:
        yield simulator


@pytest.fixture
async def engine(sim: Simulator) -> AsyncIterator[ProbeEngine]:
    async with create_session() as http:
        yield ProbeEngine(session=http, keys=pools(), upstream_override=sim.url)


@pytest.fixture
def payload(engine: ProbeEngine) -> Fetch:
    """`await payload("coingecko", "simple_price")`: the parsed body of a successful probe."""

    async def _payload(provider: str, endpoint: str) -> Any:
        [result] = await engine.probe(CATALOGUE.providers[provider], endpoint)
        # A good body that arrived late on a loaded machine is still the body under test.
        assert result.outcome in (Outcome.OK, Outcome.SLOW), result.reason
        assert result.payload is not None
        return result.payload

    return _payload
