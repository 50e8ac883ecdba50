"""Fixtures for simulator tests: a simulator on an ephemeral port and a way to call it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from apiwatch.simulator import Simulator

from .support import Answer, Fetch


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator() as simulator:
        yield simulator


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


@pytest.fixture
def fetch(sim: Simulator, http: aiohttp.ClientSession) -> Fetch:
    """`await fetch("/coingecko/api/v3/ping", headers=..., params=..., method=...)`."""

    async def _fetch(
        path: str,
        *,
        method: str = "GET",
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        data: bytes | None = None,
        json_body: Any = None,
    ) -> Answer:
        started = time.perf_counter()
        async with http.request(
            method, sim.url + path, headers=headers, params=params, data=data, json=json_body
        ) as response:
            body = await response.read()
            return Answer(response.status, response.headers, body, time.perf_counter() - started)

    return _fetch
