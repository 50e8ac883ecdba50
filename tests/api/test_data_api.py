"""Schedules, data, freshness and categories over the REST API (real HTTP, SQLite and
PostgreSQL, the simulator upstream)."""

from __future__ import annotations

import asyncio

from apiwatch.simulator import Scenario
from tests.api.test_api import Api, trigger

MARKET = ["binance", "bybit", "coingecko", "coinmarketcap", "cryptocompare", "okx"]


async def test_schedule_lists_every_collection_schedule_and_put_changes_one(api: Api) -> None:
    listing = (await api.client.get("/api/schedule")).json()
    schedules = {s["provider"]: s for s in listing["schedules"]}
    assert {"binance", "coingecko", "etherscan", "newsapi", "alternative_me"} <= set(schedules)
    binance = schedules["binance"]
    assert binance["category"] == "market_data" and binance["interval_s"] == 60
    assert binance["compliance_24h"]["planned"] == 0
    response = await api.client.put(
        f"/api/schedule/{binance['id']}", json={"interval_s": 120, "enabled": False}
    )
    assert response.status_code == 200, response.text
    assert response.json()["interval_s"] == 120 and response.json()["enabled"] is False
    again = {s["provider"]: s for s in (await api.client.get("/api/schedule")).json()["schedules"]}
    assert again["binance"]["interval_s"] == 120 and again["binance"]["enabled"] is False


async def test_schedule_put_refuses_bad_input_with_a_reason(api: Api) -> None:
    for body in ({}, {"interval_s": 0}, {"interval_s": "soon"}, {"every": 5}):
        response = await api.client.put("/api/schedule/1", json=body)
        assert response.status_code == 422, body
        assert response.json()["detail"]
    assert (await api.client.put("/api/schedule/99999", json={"enabled": True})).status_code == 404
    huge = await api.client.put("/api/schedule/99999999999999", json={"enabled": True})
    assert huge.status_code in (404, 422)


async def test_trigger_collect_fills_latest_data_freshness_and_consensus(api: Api) -> None:
    api.sim.set_scenario("coinmarketcap", Scenario("divergent", {"pct": 8}))
    result = await trigger(api, category="market_data", collect=True)
    assert sorted(result["providers"]) == MARKET
    assert all(run["result"] == "done" for run in result["collected"])
    latest = (await api.client.get("/api/data/latest", params={"item": "BTC-USD"})).json()
    providers = {p["provider"] for p in latest["points"]}
    assert providers >= {"binance", "coingecko", "coinmarketcap", "cryptocompare"}
    assert all(isinstance(p["value"], str) for p in latest["points"])  # exact decimals
    btc = latest["consensus"]["BTC-USD"]
    assert btc["divergent"] == ["coinmarketcap"]
    assert btc["providers"]["coinmarketcap"]["deviation_pct"] > 5
    fresh = (await api.client.get("/api/freshness", params={"category": "market_data"})).json()
    # Binance's order book carries no time of its own: unknown, never assumed fresh.
    undated = [(i["provider"], i["item"]) for i in fresh["items"] if i["data_time"] is None]
    assert undated == [("binance", "book:BTC-USDT")]
    assert fresh["items"] and all(
        item["status"] == ("unknown" if item["data_time"] is None else "fresh")
        for item in fresh["items"]
    )
    assert {"provider", "item", "data_time", "age_s", "ttl_s", "status"} <= set(fresh["items"][0])
    await asyncio.sleep(0.2)  # events reach the database through the batched recorder
    events = (await api.client.get("/api/events", params={"kind": "data_divergent"})).json()
    assert any(e["provider"] == "coinmarketcap" for e in events)


async def test_categories_summarize_providers_latency_freshness_and_compliance(api: Api) -> None:
    await trigger(api)  # health checks: statuses and latencies
    await trigger(api, category="sentiment", collect=True)
    await asyncio.sleep(0.1)
    categories = {
        c["category"]: c for c in (await api.client.get("/api/categories")).json()["categories"]
    }
    market = categories["market_data"]
    assert market["providers"] == MARKET
    assert market["online"] == len(MARKET) and market["avg_latency_ms"] is not None
    assert categories["sentiment"]["freshness"] == {"fresh": 1}
    assert categories["onchain"]["enabled"] == []


async def test_trigger_with_an_unknown_category_or_disabled_provider_is_a_4xx(api: Api) -> None:
    assert (
        await api.client.post("/api/schedule/trigger", json={"category": "weather"})
    ).status_code == 422
    response = await api.client.post(
        "/api/schedule/trigger", json={"category": "onchain", "collect": True}
    )
    assert response.status_code == 404 and "onchain" in response.json()["detail"]


async def test_schedule_put_refuses_an_interval_the_providers_limits_cannot_take(api: Api) -> None:
    listing = (await api.client.get("/api/schedule")).json()["schedules"]
    coingecko = next(s for s in listing if s["provider"] == "coingecko")
    response = await api.client.put(f"/api/schedule/{coingecko['id']}", json={"interval_s": 60})
    assert response.status_code == 409  # well-formed; the provider's budget cannot take it
    assert (
        "coingecko" in response.json()["detail"]
        and "rate_limit_budget" in response.json()["detail"]
    )


async def test_non_finite_numbers_get_a_422_and_far_dates_the_nearest_bound(api: Api) -> None:
    nan = await api.client.put(
        "/api/schedule/1",
        content=b'{"interval_s": NaN}',
        headers={"Content-Type": "application/json"},
    )
    assert nan.status_code == 422 and nan.json()["detail"][0]["loc"][-1] == "interval_s"
    # Any date-time the schema allows is taken; beyond 1900..9000 it means the bound.
    far = await api.client.get("/api/usage", params={"until": "0001-01-01T00:30:00"})
    assert far.status_code == 200, far.text
    late = await api.client.post(
        "/api/silences",
        json={"matchers": {"provider": "x"}, "starts_at": "9999-12-31T23:00:00", "duration_s": 60},
    )
    assert late.status_code == 201, late.text
    assert late.json()["starts_at"].startswith("9000-01-01")
