"""Fault scenarios: every provider's own rate-limit and invalid-key signals, and each
transport-level fault as a client experiences it."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from jsonpath_ng.ext import parse as jsonpath

from apiwatch.simulator import Scenario, Simulator

from .support import CATALOGUE, Answer, Fetch, call

NOTOK = {"status": "0", "message": "NOTOK"}

# provider -> (HTTP status, what the body or headers must show)
RATE_LIMITED: dict[str, tuple[int, Callable[[Answer], bool]]] = {
    "coingecko": (
        429,
        lambda a: (
            a.json()["status"]["error_code"] == 429
            and "exceeded the Rate Limit" in a.json()["status"]["error_message"]
            and a.headers["retry-after"] == "60"
        ),
    ),
    "coinmarketcap": (429, lambda a: a.json()["status"]["error_code"] == 1008),
    "cryptocompare": (
        200,
        lambda a: (
            a.json()["Response"] == "Error"
            and a.json()["Type"] == 99
            and a.json()["Message"] == "You are over your rate limit please upgrade your account!"
            and a.json()["HasWarning"] is False
            and a.json()["Data"] == {}
            and a.json()["RateLimit"]["max_calls"]["minute"] == 300
        ),
    ),
    "binance": (
        429,
        lambda a: a.json()["code"] == -1003 and a.headers["Retry-After"] == "60",
    ),
    "etherscan": (
        200,
        lambda a: (
            a.json()
            == NOTOK
            | {"result": "Max rate limit reached, please use API Key for higher rate limit"}
        ),
    ),
    "bscscan": (200, lambda a: "Max rate limit reached" in a.json()["result"]),
    "tronscan": (
        403,
        lambda a: a.json() == {"code": 403, "message": "request too quickly, please retry later."},
    ),
    "newsapi": (429, lambda a: a.json()["status"] == "error" and a.json()["code"] == "rateLimited"),
    "cryptopanic": (429, lambda a: "Retry-After" in a.headers),
    "alternative_me": (429, lambda a: "rate limit" in a.json()["metadata"]["error"].lower()),
    "thegraph": (429, lambda a: "Too many requests" in a.json()["errors"][0]["message"]),
    "blockchair": (429, lambda a: a.json()["context"]["code"] == 429),
    "glassnode": (429, lambda a: "Retry-After" in a.headers),
    # Bybit's per-UID limit: a business code inside HTTP 200, with the endpoint spent.
    "bybit": (
        200,
        lambda a: (
            a.json()["retCode"] == 10006
            and a.json()["retMsg"] == "Too many visits!"
            and a.headers["X-Bapi-Limit-Status"] == "0"
        ),
    ),
    "okx": (429, lambda a: a.json() == {"msg": "Too Many Requests", "code": "50011"}),
}

AUTH_FAILURE: dict[str, tuple[int, Callable[[Answer], bool]]] = {
    "coingecko": (401, lambda a: a.json()["status"]["error_code"] == 10002),
    "coinmarketcap": (401, lambda a: a.json()["status"]["error_code"] == 1001),
    "cryptocompare": (
        200,
        lambda a: (
            a.json()["Response"] == "Error"
            and a.json()["Message"]
            == "You need a valid auth key or api key to access this endpoint"
        ),
    ),
    "binance": (401, lambda a: a.json()["code"] == -2015),
    "etherscan": (200, lambda a: a.json() == NOTOK | {"result": "Invalid API Key (#err2)"}),
    "bscscan": (200, lambda a: a.json() == NOTOK | {"result": "Invalid API Key (#err2)"}),
    "tronscan": (401, lambda a: a.json()["code"] == 401),
    "newsapi": (401, lambda a: a.json()["code"] == "apiKeyInvalid"),
    "cryptopanic": (401, lambda a: "token" in a.json()["info"].lower()),
    "alternative_me": (401, lambda a: a.json()["metadata"]["error"] is not None),
    "thegraph": (401, lambda a: "auth error" in a.json()["errors"][0]["message"]),
    "blockchair": (403, lambda a: "key" in a.json()["context"]["error"]),
    "glassnode": (401, lambda a: True),
    "bybit": (401, lambda a: a.json()["retCode"] == 10003),
    "okx": (401, lambda a: a.json()["code"] == "50111"),
}


def test_signal_tables_cover_every_catalogue_provider() -> None:
    assert set(RATE_LIMITED) == set(CATALOGUE.providers) == set(AUTH_FAILURE)


@pytest.mark.parametrize("provider_id", sorted(RATE_LIMITED))
async def test_rate_limited_sends_the_provider_own_signal(
    sim: Simulator, fetch: Fetch, provider_id: str
) -> None:
    sim.set_scenario(provider_id, Scenario("rate_limited"))
    answer = await call(fetch, provider_id)
    status, check = RATE_LIMITED[provider_id]
    assert answer.status == status, answer.text
    assert check(answer), answer.text


@pytest.mark.parametrize("provider_id", sorted(AUTH_FAILURE))
async def test_auth_failure_sends_the_provider_invalid_key_signal(
    sim: Simulator, fetch: Fetch, provider_id: str
) -> None:
    sim.set_scenario(provider_id, Scenario("auth_failure"))
    answer = await call(fetch, provider_id)
    status, check = AUTH_FAILURE[provider_id]
    assert answer.status == status, answer.text
    assert check(answer), answer.text


async def test_etherscan_rate_limit_is_http_200_with_notok_body(
    sim: Simulator, fetch: Fetch
) -> None:
    sim.set_scenario("etherscan", Scenario("rate_limited"))
    answer = await call(fetch, "etherscan", "gas_oracle")
    assert answer.status == 200
    assert answer.json()["status"] == "0" and "rate limit" in answer.json()["result"]


async def test_binance_escalates_from_429_to_418_ban_after_three_429s(
    sim: Simulator, fetch: Fetch
) -> None:
    sim.set_scenario("binance", Scenario("rate_limited", {"retry_after": 30, "ban_s": 300}))
    answers = [await fetch("/binance/api/v3/ping") for _ in range(5)]
    assert [a.status for a in answers] == [429, 429, 429, 418, 418]
    assert all(a.json()["code"] == -1003 for a in answers)
    assert [a.headers["Retry-After"] for a in answers] == ["30", "30", "30", "300", "300"]
    assert "IP banned until" in answers[3].json()["msg"]
    assert all("X-MBX-USED-WEIGHT-1M" in a.headers for a in answers)


async def test_binance_ban_escalation_starts_afresh_with_a_new_scenario(
    sim: Simulator, fetch: Fetch
) -> None:
    sim.set_scenario("binance", Scenario("rate_limited", {"ban_after": 1}))
    assert [(await fetch("/binance/api/v3/ping")).status for _ in range(2)] == [429, 418]
    sim.set_scenario("binance", Scenario("rate_limited", {"ban_after": 1}))
    assert (await fetch("/binance/api/v3/ping")).status == 429


async def test_slow_delays_then_answers_normally(sim: Simulator, fetch: Fetch) -> None:
    sim.set_scenario("coingecko", Scenario("slow", {"ms": 150}))
    answer = await fetch("/coingecko/api/v3/ping")
    assert answer.status == 200 and answer.json()["gecko_says"]
    assert answer.elapsed >= 0.15


async def test_flaky_with_p_1_always_fails_and_p_0_never(sim: Simulator, fetch: Fetch) -> None:
    sim.set_scenario("coinmarketcap", Scenario("flaky", {"p": 1}))
    failed = await call(fetch, "coinmarketcap")
    assert failed.status == 500 and failed.json()["status"]["error_code"] == 500
    sim.set_scenario("coinmarketcap", Scenario("flaky", {"p": 0}))
    assert (await call(fetch, "coinmarketcap")).status == 200


async def test_flaky_mixes_server_errors_with_healthy_answers(sim: Simulator, fetch: Fetch) -> None:
    sim.set_scenario("binance", Scenario("flaky", {"p": 0.5}))
    statuses = {(await fetch("/binance/api/v3/ping")).status for _ in range(60)}
    assert statuses == {200, 500}


async def test_down_answers_every_request_with_the_status(sim: Simulator, fetch: Fetch) -> None:
    sim.set_scenario("binance", Scenario("down", {"status": 502}))
    answer = await fetch("/binance/api/v3/time")
    assert answer.status == 502 and answer.json()["code"] == -1001
    assert "X-MBX-USED-WEIGHT-1M" in answer.headers
    sim.set_scenario("newsapi", Scenario("down"))
    news = await call(fetch, "newsapi")
    assert news.status == 503 and news.json()["status"] == "error"


async def test_garbage_is_http_200_json_content_type_that_does_not_parse(
    sim: Simulator, fetch: Fetch
) -> None:
    sim.set_scenario("coingecko", Scenario("garbage"))
    answer = await call(fetch, "coingecko", "simple_price")
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("application/json")
    with pytest.raises(ValueError):
        json.loads(answer.body)


@pytest.mark.parametrize(
    ("provider_id", "params", "status", "marker"),
    [
        ("coingecko", {}, 429, "Cloudflare"),
        ("tronscan", {}, 403, "<title>403 Forbidden</title>"),
        ("etherscan", {}, 502, "<title>502 Bad Gateway</title>"),
        ("binance", {"status": 504}, 504, "<title>504 Gateway Timeout</title>"),
    ],
)
async def test_html_error_serves_an_html_page_instead_of_json(
    sim: Simulator,
    fetch: Fetch,
    provider_id: str,
    params: dict[str, Any],
    status: int,
    marker: str,
) -> None:
    sim.set_scenario(provider_id, Scenario("html_error", params))
    answer = await call(fetch, provider_id)
    assert answer.status == status
    assert answer.headers["Content-Type"].startswith("text/html")
    assert marker in answer.text
    if provider_id == "tronscan":
        assert "<center>nginx</center>" in answer.text


async def test_stale_pushes_every_data_timestamp_into_the_past(
    sim: Simulator, fetch: Fetch
) -> None:
    for provider_id in ("coingecko", "etherscan", "binance", "newsapi"):
        sim.set_scenario(provider_id, Scenario("stale", {"age_s": 7200}))
    gecko = (await call(fetch, "coingecko", "simple_price")).json()
    assert abs(time.time() - gecko["bitcoin"]["last_updated_at"] - 7200) < 120
    ether = (await call(fetch, "etherscan", "eth_price")).json()
    assert abs(time.time() - int(ether["result"]["ethusd_timestamp"]) - 7200) < 120
    ticker = (await call(fetch, "binance", "ticker_24hr")).json()
    assert abs(time.time() - ticker[0]["closeTime"] / 1000 - 7200) < 120
    news = (await call(fetch, "newsapi", "everything")).json()
    assert news["articles"][0]["publishedAt"] < time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 7000)
    )


async def test_stale_default_age_is_two_days(sim: Simulator) -> None:
    assert sim.set_scenario("coingecko", Scenario("stale")).params == {"age_s": 172_800}


async def test_divergent_skews_one_provider_prices_only(sim: Simulator, fetch: Fetch) -> None:
    sim.set_scenario("coingecko", Scenario("divergent", {"pct": 5}))
    gecko = (await call(fetch, "coingecko", "simple_price")).json()["bitcoin"]["usd"]
    binance = float((await call(fetch, "binance", "ticker_24hr")).json()[0]["lastPrice"])
    assert 1.045 < gecko / binance < 1.055


async def test_oversized_streams_a_json_body_of_the_requested_size(
    sim: Simulator, fetch: Fetch
) -> None:
    sim.set_scenario("newsapi", Scenario("oversized", {"bytes": 300_000}))
    answer = await call(fetch, "newsapi", "everything")
    assert answer.status == 200 and answer.headers["Content-Type"].startswith("application/json")
    assert len(answer.body) == 300_000 == int(answer.headers["Content-Length"])
    assert set(answer.json()) == {"padding"}


async def test_oversized_default_is_three_mebibytes(sim: Simulator, fetch: Fetch) -> None:
    assert sim.set_scenario("binance", Scenario("oversized")).params == {"bytes": 3 * 1024 * 1024}
    answer = await fetch("/binance/api/v3/ping")
    assert len(answer.body) == 3 * 1024 * 1024
    assert "X-MBX-USED-WEIGHT-1M" in answer.headers


async def test_reset_gives_the_client_a_connection_error(sim: Simulator, fetch: Fetch) -> None:
    sim.set_scenario("cryptocompare", Scenario("reset"))
    with pytest.raises(aiohttp.ClientConnectionError):
        await call(fetch, "cryptocompare")
    # The simulator itself is unharmed and still counts the request. aiohttp's client
    # resends an idempotent request once after a reset, so it may arrive twice.
    assert (await fetch("/binance/api/v3/ping")).status == 200
    assert sim.stats()["providers"]["cryptocompare"]["requests"] in (1, 2)


async def test_timeout_hangs_without_blocking_other_providers(
    sim: Simulator, http: aiohttp.ClientSession, fetch: Fetch
) -> None:
    sim.set_scenario("coingecko", Scenario("timeout"))
    hanging = asyncio.create_task(http.get(f"{sim.url}/coingecko/api/v3/ping"))
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    answer = await fetch("/binance/api/v3/ping")
    assert answer.status == 200 and time.perf_counter() - started < 0.5
    assert not hanging.done()
    hanging.cancel()
    with pytest.raises(asyncio.CancelledError):
        await hanging


async def test_timeout_makes_the_client_time_out(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    sim.set_scenario("etherscan", Scenario("timeout"))
    with pytest.raises(asyncio.TimeoutError):
        async with http.get(
            f"{sim.url}/etherscan/v2/api?chainid=1&module=stats&action=ethprice&apikey=K",
            timeout=aiohttp.ClientTimeout(total=0.3),
        ):
            pass


async def test_stop_returns_promptly_while_a_request_hangs() -> None:
    async with Simulator() as sim, aiohttp.ClientSession() as http:
        sim.set_scenario("coingecko", Scenario("timeout"))
        hanging = asyncio.create_task(http.get(f"{sim.url}/coingecko/api/v3/ping"))
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        await sim.stop()
        assert time.perf_counter() - started < 2
        with pytest.raises(aiohttp.ClientError):
            await hanging


async def test_scenario_for_one_provider_leaves_others_healthy(
    sim: Simulator, fetch: Fetch
) -> None:
    sim.set_scenario("coingecko", Scenario("down"))
    assert (await call(fetch, "coingecko")).status == 503
    assert (await call(fetch, "coinmarketcap")).status == 200


def _signal_matches(signal: Any, answer: Answer) -> bool:
    if signal.status is not None:
        statuses = signal.status if isinstance(signal.status, list) else [signal.status]
        if answer.status not in statuses:
            return False
    if signal.body_matches is not None:
        return re.search(signal.body_matches, answer.text) is not None
    try:
        values = [m.value for m in jsonpath(signal.json_path).find(answer.json())]
    except ValueError:
        return False
    return any(
        (signal.equals is not None and value == signal.equals)
        or (signal.matches is not None and re.search(signal.matches, str(value)) is not None)
        for value in values
    )


@pytest.mark.parametrize("provider_id", sorted(RATE_LIMITED))
async def test_catalogue_recognises_the_simulated_rate_limit_signal(
    sim: Simulator, fetch: Fetch, provider_id: str
) -> None:
    spec = CATALOGUE.providers[provider_id]
    sim.set_scenario(provider_id, Scenario("rate_limited"))
    answer = await call(fetch, provider_id)
    assert answer.status in (429, 418) or any(
        _signal_matches(s, answer) for s in spec.rate_limited_when
    ), answer.text


@pytest.mark.parametrize("provider_id", sorted(AUTH_FAILURE))
async def test_catalogue_recognises_the_simulated_invalid_key_signal(
    sim: Simulator, fetch: Fetch, provider_id: str
) -> None:
    spec = CATALOGUE.providers[provider_id]
    sim.set_scenario(provider_id, Scenario("auth_failure"))
    answer = await call(fetch, provider_id)
    assert answer.status in (401, 403) or any(
        _signal_matches(s, answer) for s in spec.auth_error_when
    ), answer.text
