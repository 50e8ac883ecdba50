"""The control endpoint, request statistics, the in-process API and CLI scenario parsing."""

from __future__ import annotations

import pytest

from apiwatch.simulator import (
    SCENARIO_NAMES,
    Scenario,
    Simulator,
    create_app,
    parse_scenario_arg,
)

from .support import CATALOGUE, Fetch


async def test_control_health_is_ok(fetch: Fetch) -> None:
    assert (await fetch("/_control/health")).json() == {"ok": True}


async def test_control_lists_every_catalogue_provider_as_healthy(fetch: Fetch) -> None:
    body = (await fetch("/_control/scenarios")).json()
    assert set(body) == set(CATALOGUE.providers)
    assert all(value == {"name": "healthy"} for value in body.values())


async def test_put_scenario_applies_and_returns_it_with_defaults(fetch: Fetch) -> None:
    answer = await fetch("/_control/scenarios/coingecko", method="PUT", json_body={"name": "slow"})
    assert answer.status == 200 and answer.json() == {"name": "slow", "ms": 3000}
    answer = await fetch(
        "/_control/scenarios/binance", method="PUT", json_body={"name": "down", "status": 502}
    )
    assert answer.json() == {"name": "down", "status": 502}
    listed = (await fetch("/_control/scenarios")).json()
    assert listed["binance"] == {"name": "down", "status": 502}
    assert (await fetch("/binance/api/v3/ping")).status == 502


async def test_delete_scenario_restores_healthy(fetch: Fetch) -> None:
    await fetch("/_control/scenarios/binance", method="PUT", json_body={"name": "down"})
    answer = await fetch("/_control/scenarios/binance", method="DELETE")
    assert answer.status == 200 and answer.json() == {"name": "healthy"}
    assert (await fetch("/binance/api/v3/ping")).status == 200


async def test_put_scenario_for_unknown_provider_is_404(fetch: Fetch) -> None:
    answer = await fetch("/_control/scenarios/nosuch", method="PUT", json_body={"name": "slow"})
    assert answer.status == 404
    assert "nosuch" in answer.json()["error"] and "coingecko" in answer.json()["providers"]
    assert (await fetch("/_control/scenarios/nosuch", method="DELETE")).status == 404


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"name": "sluggish"}, "unknown scenario 'sluggish'; allowed: healthy, slow"),
        ({"name": "slow", "msec": 10}, "unknown parameter 'msec' for scenario 'slow'; allowed: ms"),
        ({"name": "flaky", "p": 1.5}, "p=1.5 is out of range; allowed 0..1"),
        ({"name": "down", "status": "abc"}, "status must be a number"),
        ({"name": "down", "status": 502.5}, "status must be an integer"),
        ({"name": "slow", "ms": True}, "ms must be a number"),
        ({"ms": 10}, 'body needs "name"'),
        (["slow"], "body must be a JSON object"),
    ],
)
async def test_put_bad_scenario_is_400_saying_what_is_allowed(
    fetch: Fetch, body: object, says: str
) -> None:
    answer = await fetch("/_control/scenarios/coingecko", method="PUT", json_body=body)
    assert answer.status == 400
    assert says in answer.json()["error"]
    assert (await fetch("/_control/scenarios")).json()["coingecko"] == {"name": "healthy"}


async def test_put_invalid_json_is_400(fetch: Fetch) -> None:
    answer = await fetch(
        "/_control/scenarios/coingecko",
        method="PUT",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert answer.status == 400 and "not valid JSON" in answer.json()["error"]


async def test_unknown_control_path_is_a_json_404(fetch: Fetch) -> None:
    answer = await fetch("/_control/nope")
    assert answer.status == 404 and "GET /_control/stats" in answer.json()["endpoints"]


async def test_stats_count_every_request_per_provider_and_path(fetch: Fetch) -> None:
    for _ in range(3):
        await fetch("/coingecko/api/v3/ping")
    await fetch("/coingecko/api/v3/nope")
    await fetch("/etherscan/v2/api", params={"chainid": "1", "module": "stats", "action": "x"})
    await fetch("/_control/scenarios")  # control calls are not provider requests
    stats = (await fetch("/_control/stats")).json()
    assert stats["total"] == 5
    assert stats["providers"]["coingecko"] == {
        "requests": 4,
        "paths": {"/api/v3/ping": 3, "/api/v3/nope": 1},
    }
    assert stats["providers"]["etherscan"] == {"requests": 1, "paths": {"/v2/api": 1}}
    assert stats["providers"]["binance"] == {"requests": 0, "paths": {}}


async def test_stats_count_requests_answered_with_faults(sim: Simulator, fetch: Fetch) -> None:
    sim.set_scenario("newsapi", Scenario("rate_limited"))
    for _ in range(4):
        await fetch("/newsapi/v2/top-headlines/sources")
    assert sim.stats()["providers"]["newsapi"]["requests"] == 4


async def test_reset_makes_all_healthy_and_zeroes_counters(sim: Simulator, fetch: Fetch) -> None:
    sim.set_scenario("binance", Scenario("down"))
    await fetch("/binance/api/v3/ping")
    await fetch("/coingecko/api/v3/ping")
    answer = await fetch("/_control/reset", method="POST")
    assert answer.status == 200
    assert all(v == {"name": "healthy"} for v in answer.json()["scenarios"].values())
    assert (await fetch("/_control/stats")).json()["total"] == 0
    ping = await fetch("/binance/api/v3/ping")
    assert ping.status == 200 and ping.headers["X-MBX-USED-WEIGHT-1M"] == "1"


async def test_simulator_url_and_port_come_from_the_ephemeral_bind(sim: Simulator) -> None:
    assert sim.port > 0 and sim.url == f"http://127.0.0.1:{sim.port}"


async def test_simulator_set_scenario_rejects_unknown_provider_and_bad_scenario(
    sim: Simulator,
) -> None:
    with pytest.raises(KeyError, match="unknown provider 'nosuch'"):
        sim.set_scenario("nosuch", Scenario("slow"))
    with pytest.raises(ValueError, match="unknown scenario"):
        sim.set_scenario("coingecko", Scenario("sloow"))


async def test_simulator_starts_with_given_scenarios_and_providers() -> None:
    async with Simulator(
        scenarios={"coingecko": Scenario("down", {"status": 500})},
        providers=["coingecko", "binance"],
    ) as sim:
        assert sim.scenarios() == {
            "coingecko": {"name": "down", "status": 500},
            "binance": {"name": "healthy"},
        }
        assert sim.providers == ["coingecko", "binance"]


def test_create_app_rejects_scenario_for_a_provider_it_does_not_serve() -> None:
    with pytest.raises(ValueError, match="unknown provider 'etherscan'"):
        create_app(scenarios={"etherscan": Scenario("slow")}, providers=["coingecko"])


def test_scenario_names_are_the_documented_set() -> None:
    assert set(SCENARIO_NAMES) == {
        "healthy", "slow", "flaky", "down", "timeout", "reset", "rate_limited",
        "auth_failure", "garbage", "html_error", "stale", "oversized", "divergent",
        "crossed_book", "frozen_book", "thin_book", "wide_spread", "locked_book",
        "one_sided_book", "non_positive_book", "duplicate_level_book", "unordered_book",
        "rewound_book", "unreadable_book", "ticker_outside", "error_code",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("text", "provider", "scenario"),
    [
        ("coingecko=slow:ms=3000", "coingecko", Scenario("slow", {"ms": 3000})),
        ("binance=down:status=502", "binance", Scenario("down", {"status": 502})),
        (
            "etherscan=rate_limited",
            "etherscan",
            Scenario(
                "rate_limited",
                {"retry_after": 60, "ban_after": 3, "ban_s": 120, "http_status": 0},
            ),
        ),
        (
            "binance=rate_limited:ban_after=2,ban_s=30",
            "binance",
            Scenario(
                "rate_limited", {"retry_after": 60, "ban_after": 2, "ban_s": 30, "http_status": 0}
            ),
        ),
        ("newsapi=flaky:p=0.25", "newsapi", Scenario("flaky", {"p": 0.25})),
        (" tronscan = html_error ", "tronscan", Scenario("html_error", {"status": 0})),
        ("coingecko=stale:age_s=60", "coingecko", Scenario("stale", {"age_s": 60})),
    ],
)
def test_parse_scenario_arg_accepts_cli_forms(text: str, provider: str, scenario: Scenario) -> None:
    assert parse_scenario_arg(text) == (provider, scenario)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("coingecko", "expected PROVIDER=SCENARIO"),
        ("coingecko=", "expected PROVIDER=SCENARIO"),
        ("=slow", "is not a provider id"),
        ("Coin Gecko=slow", "is not a provider id"),
        ("coingecko=sloww", "unknown scenario 'sloww'"),
        ("coingecko=slow:ms", "is not KEY=VALUE"),
        ("coingecko=slow:ms=abc", "ms must be a number"),
        ("coingecko=slow:foo=1", "unknown parameter 'foo'"),
        ("coingecko=flaky:p=2", "out of range"),
        ("binance=down:status=200", "out of range"),
        ("binance=slow:ms=1,ms=2", "given twice"),
    ],
)
def test_parse_scenario_arg_rejects_bad_input_clearly(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says.replace("(", r"\(")):
        parse_scenario_arg(text)
