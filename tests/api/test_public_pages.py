"""The dashboard's API and the public faces over real HTTP (SQLite and PostgreSQL): the
overview summary, whoami, per-provider outcomes and daily uptime, `/status.json`, the Atom
feed and the badges, which need no key and show nothing internal."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree as ET

import httpx
import pytest
from pydantic import SecretStr

from apiwatch.analysis.status_page import day_level, public_cause, public_incidents
from apiwatch.catalogue.loader import load_catalogue
from apiwatch.simulator import Scenario
from tests.alerting.test_llm import KEY as LLM_KEY
from tests.alerting.test_llm import REPORT, FakeLLM
from tests.api.test_api import ADMIN_KEY, SECRET, Api, serve, trigger
from tests.conftest import empty_tables

# Whole-file wall clock for the test processes' ordering (tests/conftest.py).
pytestmark = pytest.mark.slow(21)

ATOM = "{http://www.w3.org/2005/Atom}"


def anonymous(api: Api) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=str(api.client.base_url), timeout=30)


async def break_binance(api: Api) -> None:
    """One healthy check of everything, then three failed checks of Binance, all stored."""
    await trigger(api)
    api.sim.set_scenario("binance", Scenario("down", {"status": 503}))
    for _ in range(3):
        await trigger(api, provider="binance")
    for _ in range(100):  # the recorder writes in the background (every 10 ms here)
        await asyncio.sleep(0.1)
        logs = (await api.client.get("/api/logs", params={"provider": "binance"})).json()
        if logs["total"] >= 4:
            return
    raise AssertionError(f"only {logs['total']} of binance's 4 attempts were stored")


async def test_the_overview_is_one_call_with_every_provider(api: Api) -> None:
    await break_binance(api)
    data = (await api.client.get("/api/overview")).json()
    cards = {card["id"]: card for card in data["providers"]}
    assert set(cards) == set(load_catalogue().providers)
    binance = cards["binance"]
    assert binance["status"] == "offline"
    assert "503" in binance["reason"]
    assert [beat["outcome"] for beat in binance["heartbeat"]][-3:] == ["server_error"] * 3
    assert binance["uptime_24h_pct"] == 25.0  # one ok check, three failed requests
    assert binance["requests_24h"] == 4
    assert len(binance["latency_24h_ms"]) == 24 and binance["latency_24h_ms"][-1] is not None
    assert binance["budget"]["limit"] > 0
    assert binance["breaker"] == "closed"
    assert data["counts"]["offline"] == 1
    assert data["alerts_firing"] >= 1
    enabled = len(load_catalogue().enabled())  # every one checked: online but binance
    assert data["health_score"] == round(100 * (enabled - 1) / enabled, 1)


async def test_whoami_tells_the_scope(api: Api) -> None:
    me = (await api.client.get("/api/whoami")).json()
    assert me == {"scope": "admin", "name": "admin (APIWATCH_ADMIN_KEY)", "public_read": False}
    async with anonymous(api) as client:
        assert (await client.get("/api/whoami")).status_code == 401


async def test_outcomes_and_daily_uptime_of_one_provider(api: Api) -> None:
    await break_binance(api)
    out = (await api.client.get("/api/providers/binance/outcomes?range=24h")).json()
    counts = {p["outcome"]: p["count"] for p in out["points"]}
    assert counts == {"ok": 1, "server_error": 3}
    week = (await api.client.get("/api/providers/binance/outcomes?range=7d")).json()
    assert week["counted"] == "checks"  # the live hour, counted like 24 h
    assert {p["outcome"]: p["count"] for p in week["points"]} == {"ok": 1, "server_error": 3}
    daily = (await api.client.get("/api/providers/binance/daily?days=7")).json()
    assert len(daily["days"]) == 7
    today = daily["days"][-1]
    assert today["date"] == datetime.now(UTC).date().isoformat()
    assert today["level"] == "major_outage" and today["uptime_pct"] == 25.0
    assert all(d["level"] == "no_data" for d in daily["days"][:-1])
    bad = await api.client.get("/api/providers/binance/outcomes?range=2y")
    assert bad.status_code == 422
    assert (await api.client.get("/api/providers/nope/daily")).status_code == 404


async def test_status_json_and_feed_are_public_and_show_nothing_internal(api: Api) -> None:
    await break_binance(api)
    async with anonymous(api) as client:
        response = await client.get("/status.json")
        assert response.status_code == 200
        assert response.headers["cache-control"] == "public, max-age=10"
        text = response.text
        data = response.json()
        feed = await client.get("/status/feed.atom")
        page = await client.get("/status")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for secret in (ADMIN_KEY, SECRET, api.sim.url, "127.0.0.1", "http://"):
        assert secret not in text
    enabled = {spec.id for spec in load_catalogue().enabled()}
    assert {p["id"] for p in data["providers"]} == enabled
    binance = next(p for p in data["providers"] if p["id"] == "binance")
    assert binance["status"] == "offline" and len(binance["days"]) == 90
    assert binance["days"][-1]["level"] == "major_outage"
    assert binance["cause"] == "3 consecutive failures; last: server_error"
    [incident] = [i for i in data["incidents"] if i["provider"] == "binance"]
    assert incident["ongoing"] and incident["worst"] == "offline"
    assert incident["cause"] == "1 consecutive failure; last: server_error"
    assert feed.status_code == 200 and feed.headers["content-type"] == "application/atom+xml"
    root = ET.fromstring(feed.content)
    titles = [e.findtext(f"{ATOM}title") for e in root.iter(f"{ATOM}entry")]
    assert "Binance: offline (ongoing)" in titles
    assert SECRET not in feed.text and api.sim.url not in feed.text


async def test_badges_are_svg_public_and_coloured_by_value(api: Api) -> None:
    await break_binance(api)
    async with anonymous(api) as client:
        status = await client.get("/badge/binance/status.svg")
        uptime = await client.get("/badge/binance/uptime/24h.svg")
        latency = await client.get("/badge/coingecko/latency/24h.svg")
        good = await client.get("/badge/coingecko/uptime/7d.svg")
        unknown_span = await client.get("/badge/binance/uptime/2y.svg")
        hidden = await client.get("/badge/glassnode/status.svg")  # disabled: not public
    assert status.headers["content-type"] == "image/svg+xml"
    assert status.headers["cache-control"] == "public, max-age=60"
    ET.fromstring(status.content)  # well-formed
    assert 'aria-label="binance: offline"' in status.text and "#c62828" in status.text
    assert "25.00%" in uptime.text and "#c62828" in uptime.text
    assert "100%" in good.text and "#2e7d32" in good.text
    assert " ms</text>" in latency.text
    assert unknown_span.status_code == 422
    assert hidden.status_code == 404


async def test_only_the_chosen_providers_are_public(api: Api) -> None:
    # The setting is read per request through the runtime's settings.
    api.settings.status_page_providers = ["coingecko", "binance", "not-a-provider"]
    api.settings.status_page_title = "Our upstreams"
    async with anonymous(api) as client:
        data = (await client.get("/status.json")).json()
        hidden = await client.get("/badge/etherscan/status.svg")
    assert data["title"] == "Our upstreams"
    assert [p["id"] for p in data["providers"]] == ["binance", "coingecko"]
    assert hidden.status_code == 404


def test_public_cause_drops_urls_hosts_tokens_and_details() -> None:
    reason = (
        "3 consecutive failures; last: server_error (HTTP 503 from https://api.x.io/v1?key=abc) "
        "at api.binance.com:443 via 10.0.0.7 token aw_abcdefghijklmnopqrstuvwxyz0123"
    )
    assert public_cause(reason) == "3 consecutive failures; last: server_error at via token"
    assert public_cause("slow: 2300 ms > 2000 ms") == "slow: 2300 ms 2000 ms"
    # As the demo's Etherscan showed it: "rate limited : Max…" before the gap was closed.
    assert (
        public_cause("rate limited (HTTP 200): Max rate limit reached")
        == "rate limited: Max rate limit reached"
    )
    assert len(public_cause("x" * 20 + " word" * 60)) <= 100


def test_day_levels_by_threshold() -> None:
    assert day_level(0, 0) == ("no_data", None)
    assert day_level(1000, 10) == ("operational", 99.0)
    assert day_level(1000, 11)[0] == "degraded"
    assert day_level(100, 5)[0] == "degraded"
    assert day_level(100, 6)[0] == "partial_outage"
    assert day_level(100, 21)[0] == "major_outage"


def test_incidents_from_status_changes() -> None:
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    at = [t0 + timedelta(minutes=m) for m in range(10)]

    def change(i: int, new: str, provider: str = "a", reason: str = "boom") -> dict:
        return {"provider": provider, "new_status": new, "changed_at": at[i], "reason": reason}

    found = public_incidents(
        [
            change(0, "online"),
            change(1, "degraded", reason="1 consecutive failure (http://x.io)"),
            change(2, "offline"),
            change(3, "degraded"),
            change(4, "online"),
            change(5, "unknown", provider="b"),
            change(6, "offline", provider="b"),
        ],
        now=at[9],
        since=t0,
    )
    assert [(i["provider"], i["worst"], i["ongoing"], i["duration_s"]) for i in found] == [
        ("b", "offline", True, 180.0),
        ("a", "offline", False, 180.0),
    ]
    assert found[1]["cause"] == "1 consecutive failure"
    # An incident under way at `since` starts there; one over before it is left out.
    cut = public_incidents([change(1, "offline"), change(3, "online")], now=at[9], since=at[2])
    assert cut[0]["start"] == at[2] and cut[0]["duration_s"] == 60.0
    assert (
        public_incidents([change(1, "offline"), change(2, "online")], now=at[9], since=at[5]) == []
    )


async def test_explain_asks_the_llm_now_and_stores_its_report(
    api: Api, migrated_db_url: str, llm: FakeLLM
) -> None:
    fake = llm
    await break_binance(api)
    for _ in range(100):  # alerts fire from the event bus, just after the checks
        alerts = (await api.client.get("/api/alerts", params={"provider": "binance"})).json()
        if alerts["alerts"]:
            break
        await asyncio.sleep(0.1)
    alert_id = alerts["alerts"][0]["id"]
    # Without an LLM configured the report says so and explain is refused.
    assert (await api.client.get(f"/api/alerts/{alert_id}/report")).json()[
        "llm_configured"
    ] is False
    refused = await api.client.post(f"/api/alerts/{alert_id}/explain")
    assert refused.status_code == 409 and "APIWATCH_LLM_URL" in refused.json()["detail"]

    await empty_tables(migrated_db_url)
    settings = api.settings.model_copy(
        update={"llm_url": fake.url, "llm_model": "test-model", "llm_key": SecretStr(LLM_KEY)}
    )
    server, task, port = await serve(settings)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": ADMIN_KEY}, timeout=30
        ) as client:
            await client.post("/api/schedule/trigger", json={})
            for _ in range(3):
                await client.post("/api/schedule/trigger", json={"provider": "binance"})
            for _ in range(100):  # alerts fire from the event bus, just after the checks
                alerts = (await client.get("/api/alerts", params={"provider": "binance"})).json()
                if alerts["alerts"]:
                    break
                await asyncio.sleep(0.1)
            alert_id = alerts["alerts"][0]["id"]
            asked = len(fake.requests)
            explained = await client.post(f"/api/alerts/{alert_id}/explain")
            assert explained.status_code == 200, explained.text
            assert explained.json()["report"] == REPORT
            assert explained.json()["llm_configured"] is True
            assert len(fake.requests) == asked + 1
            stored = (await client.get(f"/api/alerts/{alert_id}/report")).json()["report"]
            assert stored == REPORT
            fake.mode = "500"
            failed = await client.post(f"/api/alerts/{alert_id}/explain")
            assert failed.status_code == 502
            unknown = await client.post("/api/alerts/999999/explain")
            assert unknown.status_code == 404
    finally:
        server.should_exit = True
        await task


def test_the_overview_takes_the_worst_freshness_of_each_provider_aging_included() -> None:
    from apiwatch.api.routers.overview import worst_freshness

    rows = [
        {"provider": "binance", "status": "fresh", "age_s": 3.0},
        {"provider": "binance", "status": "aging", "age_s": 90.0},
        {"provider": "okx", "status": "unknown", "age_s": None},
        {"provider": "okx", "status": "stale", "age_s": 400.0},
    ]
    worst = worst_freshness(rows)
    assert worst["binance"] == {"status": "aging", "age_s": 90.0, "items": 2}
    assert worst["okx"]["status"] == "stale" and worst["okx"]["items"] == 2
