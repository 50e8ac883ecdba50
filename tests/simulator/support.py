"""Helpers shared by the simulator tests: the answer type and catalogue-built requests."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from multidict import CIMultiDictProxy

from apiwatch.catalogue.loader import load_catalogue
from apiwatch.catalogue.schema import EndpointSpec, ProviderSpec


@dataclass
class Answer:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    elapsed: float = 0.0

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


Fetch = Callable[..., Awaitable[Answer]]

CATALOGUE = load_catalogue()
TEST_KEY = "sim-test-key"


def request_for(
    provider: ProviderSpec, endpoint: EndpointSpec, *, with_key: bool = True
) -> dict[str, Any]:
    """The request apiwatch would send with APIWATCH_UPSTREAM_OVERRIDE set."""
    path = f"/{provider.id}{urlsplit(provider.base_url).path}{endpoint.path}"
    params = {
        k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in endpoint.params.items()
    }
    headers = dict(endpoint.headers)
    auth = provider.auth
    if with_key and auth.location == "header":
        headers[auth.name] = f"{auth.prefix}{TEST_KEY}"
    elif with_key and auth.location == "query":
        params[auth.name] = TEST_KEY
    return {"path": path, "method": endpoint.method, "params": params, "headers": headers}


async def call(
    fetch: Fetch, provider_id: str, endpoint: str = "health", *, with_key: bool = True
) -> Answer:
    """Send a catalogue endpoint's request (the health check by default) to the simulator."""
    provider = CATALOGUE.providers[provider_id]
    request = request_for(provider, provider.all_endpoints()[endpoint], with_key=with_key)
    return await fetch(
        request["path"],
        method=request["method"],
        params=request["params"],
        headers=request["headers"],
    )
