"""Every catalogue endpoint, health and data, is served with the shape its own `expect`
checks and timestamp spec describe, and required-auth providers reject a missing key with
their own error."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pytest
from jsonpath_ng.ext import parse as jsonpath

from apiwatch.catalogue.schema import Check, EndpointSpec, ProviderSpec
from apiwatch.probe.assertions import check_failure

from .support import CATALOGUE, Answer, Fetch, request_for

ENDPOINTS = [
    pytest.param(provider, name, endpoint, id=f"{provider.id}.{name}")
    for provider in CATALOGUE.providers.values()
    for name, endpoint in provider.all_endpoints().items()
]


def check_holds(check: Check, answer: Answer) -> None:
    """The probe engine's own check, so simulator and monitor agree on "healthy"."""
    try:
        document, is_json = answer.json(), True
    except ValueError:
        document, is_json = None, False
    failure = check_failure(
        check, status=answer.status, document=document, body_is_json=is_json, latency_ms=0
    )
    assert failure is None, f"{failure}: {answer.text[:300]}"


def to_epoch(value: Any, unit: str) -> float:
    if unit == "iso8601":
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    seconds = float(value)
    return seconds / 1000 if unit == "ms" else seconds


@pytest.mark.parametrize(("provider", "name", "endpoint"), ENDPOINTS)
async def test_catalogue_endpoint_passes_its_own_checks_with_fresh_timestamp(
    fetch: Fetch, provider: ProviderSpec, name: str, endpoint: EndpointSpec
) -> None:
    request = request_for(provider, endpoint)
    answer = await fetch(
        request["path"],
        method=request["method"],
        params=request["params"],
        headers=request["headers"],
    )
    for check in endpoint.expect:
        check_holds(check, answer)
    if endpoint.timestamp is not None:
        spec = endpoint.timestamp
        values = [m.value for m in jsonpath(spec.json_path).find(answer.json())]
        assert values, f"no timestamp at {spec.json_path}"
        newest = max(to_epoch(v, spec.unit) for v in values)
        assert abs(time.time() - newest) < 600, (spec.json_path, values)


# Each required-auth provider's own answer to a request without a key.
MISSING_KEY: dict[str, tuple[int, Any]] = {
    "coinmarketcap": (401, lambda body: body["status"]["error_code"] == 1002),
    "etherscan": (
        200,
        lambda body: (
            body == {"status": "0", "message": "NOTOK", "result": "Missing/Invalid API Key"}
        ),
    ),
    "bscscan": (
        200,
        lambda body: (
            body == {"status": "0", "message": "NOTOK", "result": "Missing/Invalid API Key"}
        ),
    ),
    "newsapi": (401, lambda body: body["status"] == "error" and body["code"] == "apiKeyMissing"),
    "cryptopanic": (401, lambda body: "auth_token" in body["info"]),
    "glassnode": (401, None),
    "thegraph": (401, lambda body: "authorization" in body["errors"][0]["message"]),
}


def test_every_required_auth_provider_has_a_missing_key_expectation() -> None:
    required = {p.id for p in CATALOGUE.providers.values() if p.auth.required}
    assert required == set(MISSING_KEY)


@pytest.mark.parametrize("provider_id", sorted(MISSING_KEY))
async def test_required_auth_provider_without_key_answers_its_missing_key_error(
    fetch: Fetch, provider_id: str
) -> None:
    provider = CATALOGUE.providers[provider_id]
    request = request_for(provider, provider.health, with_key=False)
    answer = await fetch(
        request["path"],
        method=request["method"],
        params=request["params"],
        headers=request["headers"],
    )
    status, body_check = MISSING_KEY[provider_id]
    assert answer.status == status, answer.text
    if body_check is not None:
        assert body_check(answer.json()), answer.text


@pytest.mark.parametrize(
    "provider_id", sorted(p.id for p in CATALOGUE.providers.values() if not p.auth.required)
)
async def test_optional_auth_provider_answers_its_health_endpoint_without_key(
    fetch: Fetch, provider_id: str
) -> None:
    provider = CATALOGUE.providers[provider_id]
    request = request_for(provider, provider.health, with_key=False)
    answer = await fetch(request["path"], params=request["params"], method=request["method"])
    assert answer.status == 200
    for check in provider.health.expect:
        check_holds(check, answer)
