"""Exchanges end to end over the simulator: `GET /api/data/books` with every check's
verdict, an integrity fault reported as `invalid_payload` with its reason, as an event and
as a `book_integrity` alert, the cross-venue mid check, and the budget tiers in
`GET /api/rate-limits`."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from apiwatch.simulator import Scenario
from tests.api.test_api import Api

EXCHANGES = ["binance", "bybit", "okx"]


async def collect(api: Api, provider: str) -> dict:
    response = await api.client.post(
        "/api/schedule/trigger", json={"provider": provider, "collect": True}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def books(api: Api, **params: str) -> dict:
    response = await api.client.get("/api/data/books", params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def events_of(api: Api, kind: str, until: object = bool) -> list[dict]:
    """The stored events of `kind`, once `until(events)` holds (rows arrive in batches)."""
    for _ in range(200):
        events = (await api.client.get("/api/events", params={"kind": kind})).json()
        if until(events):  # type: ignore[operator]
            return events
        await asyncio.sleep(0.05)
    return events


async def wait_for_alert(api: Api, provider: str) -> list[dict]:
    for _ in range(100):
        listed = await api.client.get("/api/alerts", params={"provider": provider})
        alerts = [a for a in listed.json()["alerts"] if a["rule"] == "book_integrity"]
        if alerts:
            return alerts
        await asyncio.sleep(0.05)
    return []


async def test_healthy_books_from_three_venues_pass_every_check_they_can_judge(api: Api) -> None:
    for provider in EXCHANGES:
        await collect(api, provider)
    body = await books(api)
    assert body["failing"] == []
    rows = {row["provider"]: row for row in body["books"]}
    assert set(rows) == set(EXCHANGES)
    for provider, row in rows.items():
        assert row["item"] == "book:BTC-USDT"
        bid, ask = Decimal(row["best_bid"]), Decimal(row["best_ask"])
        assert 0 < bid < ask
        assert Decimal(row["spread_bps"]) < 5 and Decimal(row["depth"]) > 0
        assert isinstance(row["update_id"], int)
        assert row["checks"]["crossed"] == "ok" and row["checks"]["cross_venue"] == "ok"
        assert set(row["checks"].values()) <= {"ok", "not_judged"}, (provider, row["checks"])
    # Binance's depth carries no time: its age and staleness are not judged, not invented.
    assert rows["binance"]["age_s"] is None and rows["binance"]["checks"]["stale"] == "not_judged"
    assert rows["bybit"]["age_s"] < 10 and rows["bybit"]["checks"]["stale"] == "ok"


async def test_a_crossed_book_is_an_invalid_payload_with_its_reason_an_event_and_an_alert(
    api: Api,
) -> None:
    api.sim.set_scenario("bybit", Scenario("crossed_book"))
    run = await collect(api, "bybit")
    [collected] = run["collected"]
    errors = {e["endpoint"]: e["error"] for e in collected["errors"]}
    assert errors["orderbook"].startswith("book_integrity: crossed: best bid ")
    body = await books(api, provider="bybit")
    assert body["failing"] == ["bybit"]
    [row] = body["books"]
    assert row["checks"]["crossed"] == "failed" and "crossed" in row["failed"]
    assert Decimal(row["best_bid"]) > Decimal(row["best_ask"])
    params = {"provider": "bybit", "outcome": "invalid_payload"}
    for _ in range(200):  # attempts reach the database in batches
        logs = (await api.client.get("/api/logs", params=params)).json()
        if logs["items"]:
            break
        await asyncio.sleep(0.05)
    [attempt] = [a for a in logs["items"] if a["endpoint"] == "orderbook"]
    assert attempt["status_code"] == 200
    assert attempt["reason"].startswith("book_integrity: crossed")
    events = await events_of(api, "book_integrity")
    assert any(e["provider"] == "bybit" and e["data"]["check"] == "crossed" for e in events)
    alerts = await wait_for_alert(api, "bybit")
    assert alerts and alerts[0]["severity"] == "critical"
    assert "book_integrity: crossed" in alerts[0]["message"]
    metrics = (await api.client.get("/metrics")).text
    assert (
        'apiwatch_book_check_failing{check="crossed",item="book:BTC-USDT",provider="bybit"} 1.0'
        in (metrics)
    )
    assert (
        'apiwatch_book_check_failing{check="stale",item="book:BTC-USDT",provider="bybit"} 0.0'
        in (metrics)
    )


async def test_the_venue_whose_mid_strays_from_the_others_is_flagged_cross_venue(api: Api) -> None:
    api.sim.set_scenario("okx", Scenario("divergent", {"pct": 3}))
    for provider in EXCHANGES:
        await collect(api, provider)
    rows = {row["provider"]: row for row in (await books(api))["books"]}
    assert rows["okx"]["checks"]["cross_venue"] == "failed"
    assert "from the venues' median" in rows["okx"]["failed"]["cross_venue"]
    assert rows["bybit"]["checks"]["cross_venue"] == "ok"
    assert rows["binance"]["checks"]["cross_venue"] == "ok"
    books_events = await events_of(api, "book_integrity")
    assert {(e["provider"], e["data"]["check"]) for e in books_events} == {("okx", "cross_venue")}
    # Said once, as a book check: not again as a data_divergent of the book's mid.
    divergent = (await api.client.get("/api/events", params={"kind": "data_divergent"})).json()
    assert all(not e["data"]["item"].startswith("book:") for e in divergent)


async def test_rate_limits_show_the_ip_tier_and_each_endpoint_tier(api: Api) -> None:
    await collect(api, "okx")
    # Bybit's headers report each endpoint's own per-second limit, which holds for the
    # second it was reported in: read it in that second (again, if a loaded machine let
    # the second pass between the collection and the read).
    for _ in range(5):
        await collect(api, "bybit")
        windows = (await api.client.get("/api/rate-limits")).json()["windows"]
        bybit = {
            (w["tier"], w["scope"], w["window"]): w for w in windows if w["provider"] == "bybit"
        }
        if ("endpoint", "orderbook", "second") in bybit:
            break
    okx = {(w["tier"], w["scope"], w["window"]): w for w in windows if w["provider"] == "okx"}
    assert okx[("endpoint", "ticker", "2s")]["limit"] == 20
    assert okx[("endpoint", "books", "2s")]["limit"] == 40
    assert okx[("endpoint", "health", "2s")]["limit"] == 10
    assert bybit[("ip", "", "5s")]["limit"] == 600
    assert bybit[("endpoint", "orderbook", "second")]["source"] == "reported"
    assert bybit[("endpoint", "orderbook", "second")]["limit"] == 100
    # /metrics tells the two OKX 2 s windows apart by tier and scope.
    metrics = (await api.client.get("/metrics")).text
    for endpoint in ("ticker", "books"):
        assert (
            f'apiwatch_rate_limit_used_ratio{{provider="okx",scope="{endpoint}",tier="endpoint",'
            f'window="2s"}}'
        ) in metrics
