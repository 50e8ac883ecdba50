"""The probe engine against the simulator over real HTTP: every outcome class, by provider."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from collections.abc import AsyncIterator

import pytest

from apiwatch.budget.keys import Key, KeyPool
from apiwatch.catalogue.loader import load_catalogue
from apiwatch.catalogue.schema import ProviderSpec
from apiwatch.domain import NO_HEADERS, Outcome, SkipReason
from apiwatch.probe.client import create_session
from apiwatch.probe.engine import ProbeEngine, build_url
from apiwatch.probe.retry import RetryPolicy
from apiwatch.simulator import Scenario, Simulator

CATALOGUE = load_catalogue()
SECRET = "SECRETKEY-0123456789abcdef"


def pools(secret: str = SECRET) -> dict[str, KeyPool]:
    return {
        spec.id: KeyPool(spec.id, [Key(name, f"{secret}-{name}") for name in spec.auth.keys])
        for spec in CATALOGUE.providers.values()
    }


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(port=0) as simulator:
        yield simulator


@pytest.fixture
async def engine(sim: Simulator) -> AsyncIterator[ProbeEngine]:
    async with create_session() as http:
        yield ProbeEngine(
            session=http, keys=pools(), upstream_override=sim.url, retry=RetryPolicy()
        )


def spec(provider: str, **changes: object) -> ProviderSpec:
    return CATALOGUE.providers[provider].model_copy(update=changes)


ALL_ENDPOINTS = [
    (pid, name) for pid, p in CATALOGUE.providers.items() for name in p.all_endpoints()
]


@pytest.mark.parametrize(("provider", "endpoint"), ALL_ENDPOINTS)
async def test_every_catalogue_endpoint_is_ok_against_a_healthy_simulator(
    engine: ProbeEngine, provider: str, endpoint: str
) -> None:
    [result] = await engine.probe(CATALOGUE.providers[provider], endpoint)
    assert result.outcome is Outcome.OK, result.reason
    assert result.status_code == 200
    assert result.latency_ms is not None and result.latency_ms > 0
    assert result.payload is not None


@pytest.mark.parametrize("provider", ["etherscan", "bscscan"])
async def test_explorer_rate_limit_in_a_200_body_is_rate_limited(
    sim: Simulator, engine: ProbeEngine, provider: str
) -> None:
    sim.set_scenario(provider, Scenario("rate_limited", {}))
    [result] = await engine.probe(CATALOGUE.providers[provider], "health")
    assert (result.outcome, result.status_code) == (Outcome.RATE_LIMITED, 200)
    assert "Max rate limit reached" in result.reason


async def test_cryptocompare_type_99_in_a_200_body_is_rate_limited(
    sim: Simulator, engine: ProbeEngine
) -> None:
    sim.set_scenario("cryptocompare", Scenario("rate_limited", {}))
    [result] = await engine.probe(CATALOGUE.providers["cryptocompare"], "pricemultifull")
    assert (result.outcome, result.status_code) == (Outcome.RATE_LIMITED, 200)
    assert "rate limit" in result.reason


async def test_cloudflare_html_page_with_429_is_rate_limited(
    sim: Simulator, engine: ProbeEngine
) -> None:
    sim.set_scenario("coingecko", Scenario("html_error", {}))
    [result] = await engine.probe(CATALOGUE.providers["coingecko"], "health")
    assert (result.outcome, result.status_code) == (Outcome.RATE_LIMITED, 429)


async def test_binance_429_escalates_to_418_with_retry_after(
    sim: Simulator, engine: ProbeEngine
) -> None:
    sim.set_scenario("binance", Scenario("rate_limited", {}))
    results = [(await engine.probe(CATALOGUE.providers["binance"], "health"))[0] for _ in range(4)]
    assert [r.status_code for r in results] == [429, 429, 429, 418]
    assert all(r.outcome is Outcome.RATE_LIMITED for r in results)
    assert all(r.retry_after_s is not None and r.retry_after_s > 0 for r in results)
    assert "IP banned" in results[-1].reason


@pytest.mark.parametrize(
    "provider",
    [
        "coingecko",
        "coinmarketcap",
        "cryptocompare",
        "etherscan",
        "bscscan",
        "newsapi",
        "cryptopanic",
        "tronscan",
    ],
)
async def test_invalid_key_signal_is_auth_error(
    sim: Simulator, engine: ProbeEngine, provider: str
) -> None:
    sim.set_scenario(provider, Scenario("auth_failure", {}))
    [result] = await engine.probe(CATALOGUE.providers[provider], "health")
    assert result.outcome is Outcome.AUTH_ERROR, result.reason
    assert SECRET not in result.reason


@pytest.mark.parametrize(("scenario", "status"), [("rate_limited", 403), ("html_error", 403)])
async def test_tronscan_403_throttle_is_rate_limited_not_auth(
    sim: Simulator, engine: ProbeEngine, scenario: str, status: int
) -> None:
    sim.set_scenario("tronscan", Scenario(scenario, {}))
    [result] = await engine.probe(CATALOGUE.providers["tronscan"], "health")
    assert (result.outcome, result.status_code) == (Outcome.RATE_LIMITED, status)


async def test_200_with_a_body_that_does_not_parse_is_invalid_payload(
    sim: Simulator, engine: ProbeEngine
) -> None:
    sim.set_scenario("alternative_me", Scenario("garbage", {}))
    [result] = await engine.probe(CATALOGUE.providers["alternative_me"], "health")
    assert (result.outcome, result.status_code) == (Outcome.INVALID_PAYLOAD, 200)
    assert "not valid JSON" in result.reason or "not JSON" in result.reason


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (503, Outcome.SERVER_ERROR),
        (500, Outcome.SERVER_ERROR),
        (404, Outcome.CLIENT_ERROR),
        (451, Outcome.CLIENT_ERROR),
    ],
)
async def test_http_status_classes(
    sim: Simulator, engine: ProbeEngine, status: int, outcome: Outcome
) -> None:
    sim.set_scenario("binance", Scenario("down", {"status": status}))
    [result] = await engine.probe(CATALOGUE.providers["binance"], "health")
    assert (result.outcome, result.status_code) == (outcome, status)


async def test_timeout_is_retried_at_once_with_a_longer_timeout(
    sim: Simulator, engine: ProbeEngine
) -> None:
    sim.set_scenario("coingecko", Scenario("timeout", {}))
    results = await engine.probe(spec("coingecko", timeout_s=0.2), "health")
    assert [r.outcome for r in results] == [Outcome.TIMEOUT] * 3
    assert [r.attempt for r in results] == [1, 2, 3]
    # Each try waited its own timeout (0.2, 0.3, 0.45 s); generous upper bounds for a busy box.
    latencies = [r.latency_ms or 0 for r in results]
    for latency, timeout_ms in zip(latencies, (200, 300, 450), strict=True):
        assert timeout_ms * 0.95 <= latency < timeout_ms + 250, latencies


async def test_reset_connection_is_connection_error(sim: Simulator, engine: ProbeEngine) -> None:
    sim.set_scenario("newsapi", Scenario("reset", {}))
    results = await engine.probe(CATALOGUE.providers["newsapi"], "health")
    assert [r.outcome for r in results] == [Outcome.CONNECTION_ERROR] * 3
    assert results[-1].status_code is None
    assert results[-1].reason in (
        "connection reset by peer",
        "server closed the connection without a response",
    )


async def test_nothing_listening_is_connection_error() -> None:
    async with create_session() as http:
        engine = ProbeEngine(session=http, keys=pools(), upstream_override="http://127.0.0.1:9")
        results = await engine.probe(CATALOGUE.providers["binance"], "health")
    assert results[-1].outcome is Outcome.CONNECTION_ERROR
    assert "cannot connect" in results[-1].reason


async def test_oversized_body_is_cut_off_and_invalid_payload(
    sim: Simulator, engine: ProbeEngine
) -> None:
    sim.set_scenario("coingecko", Scenario("oversized", {"bytes": 3 * 1024 * 1024}))
    [result] = await engine.probe(CATALOGUE.providers["coingecko"], "simple_price")
    assert result.outcome is Outcome.INVALID_PAYLOAD
    assert "larger than 2097152 bytes" in result.reason
    assert result.payload is None


async def test_slow_response_over_threshold_is_slow(sim: Simulator, engine: ProbeEngine) -> None:
    sim.set_scenario("binance", Scenario("slow", {"ms": 150}))
    [result] = await engine.probe(spec("binance", slow_ms=100.0), "health")
    assert result.outcome is Outcome.SLOW
    assert result.latency_ms is not None and result.latency_ms >= 150


async def test_failed_assertion_in_200_is_invalid_payload_naming_the_check(
    engine: ProbeEngine,
) -> None:
    from apiwatch.catalogue.schema import Check

    gecko = CATALOGUE.providers["coingecko"]
    strict = gecko.health.model_copy(
        update={"expect": [Check(status=200), Check(json="$.gecko_says", equals="nope")]}
    )
    [result] = await engine.probe(gecko.model_copy(update={"health": strict}), "health")
    assert (result.outcome, result.status_code) == (Outcome.INVALID_PAYLOAD, 200)
    assert result.reason.startswith("$.gecko_says should equal 'nope', got")


async def test_missing_required_key_is_skipped_without_sending(sim: Simulator) -> None:
    async with create_session() as http:
        engine = ProbeEngine(session=http, keys={}, upstream_override=sim.url)
        [result] = await engine.probe(CATALOGUE.providers["etherscan"], "health")
        [keyless] = await engine.probe(CATALOGUE.providers["coingecko"], "health")
    assert (result.outcome, result.reason) == (Outcome.SKIPPED, SkipReason.NO_KEY.value)
    assert keyless.outcome is Outcome.OK  # optional key: probed without one
    assert sim.stats()["providers"].get("etherscan", {}).get("requests", 0) == 0


async def test_key_is_sent_where_the_catalogue_says_and_shown_masked(
    sim: Simulator, engine: ProbeEngine
) -> None:
    [result] = await engine.probe(CATALOGUE.providers["etherscan"], "health")
    assert result.outcome is Outcome.OK
    assert result.key_label is not None
    assert result.key_label.startswith("ETHERSCAN_KEY_1=SECR…")
    assert SECRET not in str(result.as_dict())


def test_upstream_override_maps_provider_id_and_base_path() -> None:
    gecko, scan = CATALOGUE.providers["coingecko"], CATALOGUE.providers["etherscan"]
    assert build_url(gecko, gecko.health, "http://h:1") == "http://h:1/coingecko/api/v3/ping"
    assert build_url(scan, scan.health, "http://h:1") == "http://h:1/etherscan/v2/api"
    assert build_url(gecko, gecko.health, None) == "https://api.coingecko.com/api/v3/ping"


async def test_only_results_with_budget_headers_carry_a_mapping_of_their_own(
    sim: Simulator, engine: ProbeEngine
) -> None:
    """A result keeps the rate-limit headers a budget reads; one whose answer had none shares
    one read-only empty mapping (a monitor holds hundreds of thousands of results)."""
    [plain] = await engine.probe(CATALOGUE.providers["coingecko"], "health")
    assert plain.headers is NO_HEADERS and not plain.headers
    with pytest.raises(TypeError):
        plain.headers["retry-after"] = "1"  # type: ignore[index]
    # It copies and pickles as itself, so results still do.
    assert copy.deepcopy(plain).headers is NO_HEADERS
    assert pickle.loads(pickle.dumps(plain)).headers is NO_HEADERS
    assert dataclasses.asdict(plain)["headers"] is NO_HEADERS
    [weighed] = await engine.probe(CATALOGUE.providers["binance"], "health")
    assert "x-mbx-used-weight-1m" in weighed.headers and weighed.headers is not NO_HEADERS
