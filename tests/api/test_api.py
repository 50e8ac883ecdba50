"""The REST API over real HTTP: a uvicorn server, the simulator upstream, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from apiwatch.api.app import create_app
from apiwatch.catalogue.loader import load_catalogue
from apiwatch.settings import Settings
from apiwatch.simulator import Scenario, Simulator
from tests.conftest import empty_tables

# Whole-file wall clock for the test processes' ordering (tests/conftest.py).
pytestmark = pytest.mark.slow(26)

SECRET = "TOPSECRET-etherscan-0123456789"
ADMIN_KEY = "aw_test-admin-key-for-the-api-tests-000000"
KEYED = {
    name: f"{SECRET}-{name}"
    for spec in load_catalogue().providers.values()
    for name in spec.auth.keys
}


@dataclass
class Api:
    client: httpx.AsyncClient
    sim: Simulator
    settings: Settings
    app: FastAPI


async def serve(
    settings: Settings, **app_options: object
) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    config = uvicorn.Config(
        create_app(settings, start_scheduler=False, **app_options),  # type: ignore[arg-type]
        host="127.0.0.1",
        port=0,
        log_config=None,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, task, port


@pytest.fixture
async def api(migrated_db_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Api]:
    db_url = migrated_db_url
    await empty_tables(db_url)
    for name, value in KEYED.items():
        monkeypatch.setenv(name, value)
    async with Simulator(port=0) as sim:
        settings = Settings(
            _env_file=None,
            database_url=db_url,
            upstream_override=sim.url,
            recorder_flush_ms=10,
            admin_key=ADMIN_KEY,
        )
        server, task, port = await serve(settings)
        try:
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", timeout=30, headers={"X-API-Key": ADMIN_KEY}
            ) as client:
                yield Api(client, sim, settings, server.config.app)
        finally:
            server.should_exit = True
            await task


async def trigger(api: Api, **body: object) -> dict:
    response = await api.client.post("/api/schedule/trigger", json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def settle(api: Api) -> None:
    """Everything recorded so far is in the database: the recorder is flushed, rather than
    slept on (a loaded machine outlasts any sleep)."""
    assert await api.app.state.runtime.recorder.flush(max_wait_s=10)


async def test_trigger_all_probes_every_enabled_provider_and_all_go_online(api: Api) -> None:
    ran = await trigger(api)
    enabled = {spec.id for spec in load_catalogue().enabled()}
    assert {r["provider"] for r in ran["results"]} == enabled
    assert all(r["outcome"] == "ok" for r in ran["results"]), ran["results"]
    providers = (await api.client.get("/api/providers")).json()
    status = {p["id"]: p["status"] for p in providers}
    assert {pid for pid, s in status.items() if s == "online"} == enabled
    assert {pid for pid, s in status.items() if s == "unknown"} == {
        "thegraph",
        "blockchair",
        "glassnode",
    }
    await settle(api)
    overall = (await api.client.get("/api/status")).json()
    assert overall["counts"]["online"] == len(enabled)
    assert overall["health_score"] == 100.0
    assert overall["last_check_at"] is not None


async def test_provider_goes_degraded_then_offline_and_changes_are_stored(api: Api) -> None:
    await trigger(api, provider="binance")
    api.sim.set_scenario("binance", Scenario("down", {"status": 503}))
    seen = []
    for _ in range(3):
        ran = await trigger(api, provider="binance")
        seen.append(ran["statuses"]["binance"]["status"])
    assert seen == ["degraded", "degraded", "offline"]
    await settle(api)
    detail = (await api.client.get("/api/providers/binance")).json()
    assert detail["status"] == "offline"
    assert detail["consecutive_failures"] == 3
    assert detail["last_outcome"] == "server_error"
    assert [(c["old_status"], c["new_status"]) for c in detail["recent_changes"]][:3] == [
        ("degraded", "offline"),
        ("online", "degraded"),
        ("unknown", "online"),
    ]
    offline = (await api.client.get("/api/providers", params={"status": "offline"})).json()
    assert [p["id"] for p in offline] == ["binance"]
    overall = (await api.client.get("/api/status")).json()
    assert overall["counts"]["offline"] == 1


async def test_uptime_counts_successes_over_24h(api: Api) -> None:
    await trigger(api, provider="coingecko")
    api.sim.set_scenario("coingecko", Scenario("down", {"status": 500}))
    await trigger(api, provider="coingecko")
    await settle(api)
    [gecko] = [
        p
        for p in (await api.client.get("/api/providers", params={"category": "market_data"})).json()
        if p["id"] == "coingecko"
    ]
    assert gecko["checks_24h"] == 2
    assert gecko["uptime_24h_pct"] == 50.0


async def test_a_check_retried_at_once_counts_as_one_failure(api: Api) -> None:
    await trigger(api, provider="tronscan")
    api.sim.set_scenario("tronscan", Scenario("reset", {}))
    ran = await trigger(api, provider="tronscan")
    assert [r["attempt"] for r in ran["results"]] == [1, 2, 3]
    assert [r["final"] for r in ran["results"]] == [False, False, True]
    assert ran["statuses"]["tronscan"]["status"] == "degraded"  # one failed check, not three
    await settle(api)
    [tron] = [p for p in (await api.client.get("/api/providers")).json() if p["id"] == "tronscan"]
    assert (tron["checks_24h"], tron["uptime_24h_pct"]) == (2, 50.0)
    logs = (await api.client.get("/api/logs", params={"provider": "tronscan"})).json()
    assert logs["total"] == 4  # every attempt is still stored


async def test_logs_are_paginated_and_filtered(api: Api) -> None:
    api.sim.set_scenario("cryptocompare", Scenario("rate_limited", {}))
    await trigger(api, scope="all")
    await settle(api)
    page = (await api.client.get("/api/logs", params={"limit": 5})).json()
    assert page["limit"] == 5 and len(page["items"]) == 5 and page["total"] > 5
    second = (await api.client.get("/api/logs", params={"limit": 5, "offset": 5})).json()
    assert {i["id"] for i in page["items"]}.isdisjoint({i["id"] for i in second["items"]})
    limited = (
        await api.client.get(
            "/api/logs", params={"provider": "cryptocompare", "outcome": "rate_limited"}
        )
    ).json()
    endpoints = len(load_catalogue().providers["cryptocompare"].all_endpoints())
    assert limited["total"] == endpoints
    assert all(i["status_code"] == 200 for i in limited["items"])
    naive = await api.client.get("/api/logs", params={"since": "2000-01-01T00:00:00"})
    assert naive.status_code == 200 and naive.json()["total"] == page["total"]
    future = await api.client.get("/api/logs", params={"since": "2999-01-01T00:00:00Z"})
    assert future.json()["total"] == 0


async def test_failures_report_distribution_top_providers_and_remediation(api: Api) -> None:
    api.sim.set_scenario("binance", Scenario("down", {"status": 502}))
    api.sim.set_scenario("cryptocompare", Scenario("garbage", {}))
    await trigger(api)
    await settle(api)
    body = (await api.client.get("/api/failures")).json()
    by = {row["outcome"]: row for row in body["by_outcome"]}
    assert by["server_error"]["count"] == 1
    assert by["invalid_payload"]["count"] == 1
    assert "(5xx)" in by["server_error"]["remediation"]
    assert {row["provider"] for row in body["top_providers"]} == {"binance", "cryptocompare"}
    assert {row["provider"] for row in body["recent"]} == {"binance", "cryptocompare"}
    assert set(body["remediation"]) >= {"timeout", "rate_limited", "auth_error"}


BAD_INPUT = [
    ("get", "/api/logs", {"params": {"outcome": "meh"}}, 422, "ok"),
    ("get", "/api/logs", {"params": {"limit": 0}}, 422, "greater than"),
    ("get", "/api/logs", {"params": {"since": "yesterday"}}, 422, "datetime"),
    ("get", "/api/logs", {"params": {"provider": "nope"}}, 404, "unknown provider"),
    (
        "get",
        "/api/logs",
        {"params": {"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}},
        400,
        "since",
    ),
    ("get", "/api/providers", {"params": {"category": "stocks"}}, 422, "market_data"),
    ("get", "/api/providers/nope", {}, 404, "coingecko"),
    ("get", "/api/failures", {"params": {"hours": -1}}, 422, "greater than"),
    ("post", "/api/schedule/trigger", {"json": {"provider": "nope"}}, 404, "unknown"),
    ("post", "/api/schedule/trigger", {"json": {"provider": "glassnode"}}, 409, "disabled"),
    ("post", "/api/schedule/trigger", {"json": {"scope": "everything"}}, 422, "health"),
    ("post", "/api/schedule/trigger", {"json": {"provder": "x"}}, 422, "provder"),
    ("post", "/api/schedule/trigger", {"content": b"{not json"}, 422, "JSON"),
    ("get", "/api/logs", {"params": {"offset": 2**63}}, 422, "less than"),
    # Beyond 1900..9000 a time means the bound: nothing stored lies outside.
    ("get", "/api/logs", {"params": {"since": "0001-01-01T00:00:00+14:00"}}, 200, "items"),
    ("get", "/api/logs", {"params": {"until": "9999-12-31T23:59:59-14:00"}}, 200, "items"),
    ("get", "/api/logs", {"params": {"since": "1700000000"}}, 422, "ISO 8601"),
    ("get", "/api/logs", {"params": {"limit": "ten"}}, 422, "integer"),
]


async def test_bad_input_gets_a_clear_4xx_never_a_500(api: Api) -> None:
    for method, path, kwargs, status, says in BAD_INPUT:
        if "content" in kwargs:
            kwargs = {**kwargs, "headers": {"content-type": "application/json"}}
        response = await getattr(api.client, method)(path, **kwargs)
        assert response.status_code == status, (path, kwargs, response.text)
        assert says in response.text, (path, kwargs, response.text)


async def test_openapi_docs_are_served(api: Api) -> None:
    assert (await api.client.get("/docs")).status_code == 200
    assert (await api.client.get("/redoc")).status_code == 200
    spec = (await api.client.get("/openapi.json")).json()
    assert {
        "/api/status",
        "/api/providers",
        "/api/logs",
        "/api/failures",
        "/api/schedule/trigger",
    } <= set(spec["paths"])


async def test_keys_never_appear_in_api_output_or_logs(
    api: Api, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    api.sim.set_scenario("etherscan", Scenario("auth_failure", {}))
    for _ in range(3):
        await trigger(api, provider="etherscan")
    await settle(api)
    bodies = [
        (await api.client.get(path)).text
        for path in (
            "/api/logs?limit=1000",
            "/api/providers",
            "/api/providers/etherscan",
            "/api/failures",
            "/api/status",
        )
    ]
    captured = capsys.readouterr()
    for text in [*bodies, caplog.text, captured.out, captured.err]:
        assert SECRET not in text
    logs = (await api.client.get("/api/logs", params={"provider": "etherscan"})).json()
    # The primary key was rejected, so the pool rotated to the backup; once both were
    # rejected the check was skipped rather than sent without a key.
    assert [(i["outcome"], i["key_label"], i["reason"]) for i in reversed(logs["items"])] == [
        (
            "auth_error",
            "ETHERSCAN_KEY_1=TOPS…EY_1",
            "key rejected (HTTP 200): Invalid API Key (#err2)",
        ),
        (
            "auth_error",
            "ETHERSCAN_KEY_2=TOPS…EY_2",
            "key rejected (HTTP 200): Invalid API Key (#err2)",
        ),
        ("skipped", None, "no_key (all_keys_invalid)"),
    ]


async def test_rate_limits_show_every_window_with_source_and_forecast(api: Api) -> None:
    await trigger(api, provider="binance", scope="all")
    await trigger(api, provider="cryptocompare")
    body = (await api.client.get("/api/rate-limits")).json()
    windows = {(w["provider"], w["window"]): w for w in body["windows"]}
    assert windows[("binance", "minute")]["source"] == "reported"
    assert windows[("binance", "minute")]["limit"] == 6000
    # The second window may have rolled over by the time of the read on a busy machine; the
    # month window holds the one request counted.
    cc = windows[("cryptocompare", "second")]
    assert (cc["source"], cc["limit"], cc["used"] + cc["remaining"]) == ("counted", 20, 20)
    month = windows[("cryptocompare", "month")]
    assert (month["source"], month["used"]) == ("counted", 1)
    assert month["remaining"] == month["limit"] - 1
    assert {("cryptocompare", w) for w in ("minute", "hour", "day", "month")} <= set(windows)
    one = (await api.client.get("/api/rate-limits", params={"provider": "binance"})).json()
    assert {w["provider"] for w in one["windows"]} == {"binance"}
    assert (await api.client.get("/api/rate-limits", params={"provider": "x"})).status_code == 404


async def test_config_keys_are_masked_with_status_and_last_use(api: Api) -> None:
    await trigger(api, provider="etherscan")
    listed = (await api.client.get("/api/config/keys")).json()
    assert SECRET not in str(listed)
    by_name = {k["env_name"]: k for k in listed}
    assert by_name["ETHERSCAN_KEY_1"]["status"] == "valid"
    assert by_name["ETHERSCAN_KEY_1"]["last_used"] is not None
    assert by_name["ETHERSCAN_KEY_2"]["status"] == "unknown"
    assert by_name["ETHERSCAN_KEY_1"]["masked"] == "TOPS…EY_1"
    assert {k["provider"] for k in listed} >= {"etherscan", "coinmarketcap", "newsapi"}


async def test_key_test_probes_each_key_and_updates_its_status(api: Api) -> None:
    api.sim.set_scenario("newsapi", Scenario("auth_failure", {}))
    before = api.sim.stats()["providers"].get("etherscan", {}).get("requests", 0)
    tested = (await api.client.post("/api/config/keys/test", json={"provider": "etherscan"})).json()
    assert [(t["env_name"], t["outcome"], t["status"]) for t in tested] == [
        ("ETHERSCAN_KEY_1", "ok", "valid"),
        ("ETHERSCAN_KEY_2", "ok", "valid"),
    ]
    assert api.sim.stats()["providers"]["etherscan"]["requests"] == before + 2
    [bad] = (
        await api.client.post("/api/config/keys/test", json={"env_name": "NEWSAPI_KEY"})
    ).json()
    assert (bad["outcome"], bad["status"]) == ("auth_error", "invalid")
    assert SECRET not in str(tested) + str(bad)
    unknown = await api.client.post("/api/config/keys/test", json={"env_name": "NOPE_KEY"})
    assert unknown.status_code == 404 and "NOPE_KEY" in unknown.text
    # A failing key test says nothing about the provider's own status.
    providers = {p["id"]: p["status"] for p in (await api.client.get("/api/providers")).json()}
    assert providers["newsapi"] == "unknown"


async def test_rate_limit_warnings_are_stored_and_listed(api: Api) -> None:
    # Start just after a second boundary so the 4 concurrent requests share one second window.
    await asyncio.sleep(1.02 - time.time() % 1)
    ran = await trigger(api, provider="etherscan", scope="all")
    outcomes = sorted(r["outcome"] for r in ran["results"])
    # 3 per second: every endpoint past the third waits for the next second.
    assert outcomes == ["ok"] * 3 + ["skipped"] * (len(outcomes) - 3) and len(outcomes) > 3
    await settle(api)
    listed = (await api.client.get("/api/events", params={"kind": "rate_limit_warning"})).json()
    assert [(e["provider"], e["data"]["window"], e["data"]["limit"]) for e in listed] == [
        ("etherscan", "second", 3)
    ]
    bad = await api.client.get("/api/events", params={"kind": "nope"})
    assert bad.status_code == 422
