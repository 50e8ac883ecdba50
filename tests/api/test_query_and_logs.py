"""Misspelled query parameters are refused by every route, naming the unknown one and the
known ones; `/api/logs` items carry `final`."""

from __future__ import annotations

from fastapi import Depends, FastAPI, WebSocket
from fastapi.testclient import TestClient

from apiwatch.api.query_check import reject_unknown_query
from apiwatch.simulator import Scenario
from tests.api.test_api import Api, settle, trigger


async def test_misspelled_parameter_is_named_with_the_known_ones(api: Api) -> None:
    response = await api.client.get("/api/logs", params={"provder": "binance"})
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "unknown query parameter 'provder' for /api/logs" in detail
    assert "known: limit, offset, outcome, provider, since, until" in detail


async def test_every_route_refuses_unknown_parameters(api: Api) -> None:
    app = api.client  # over real HTTP, the routes apiwatch really has
    spec = (await app.get("/openapi.json")).json()
    checked = 0
    for path, methods in spec["paths"].items():
        if "get" not in methods or "{" in path:
            continue
        response = await app.get(path, params={"zz_not_a_parameter": "1"})
        assert response.status_code == 400, (path, response.text)
        assert "'zz_not_a_parameter'" in response.json()["detail"], path
        checked += 1
    assert checked >= 10
    # Known parameters still work, and so do static files with a cache-busting query.
    assert (await app.get("/api/logs", params={"provider": "binance"})).status_code == 200
    assert (await app.get("/static/docs/nothing.js", params={"v": "1"})).status_code == 404


async def test_logs_items_carry_final(api: Api) -> None:
    # A reset connection is retried at once: the earlier tries are not final.
    api.sim.set_scenario("tronscan", Scenario("reset", {}))
    await trigger(api, provider="tronscan")
    await settle(api)
    items = (await api.client.get("/api/logs", params={"provider": "tronscan"})).json()["items"]
    assert items and all(isinstance(item["final"], bool) for item in items)
    assert {item["final"] for item in items} == {True, False}
    assert all(item["final"] == (item["attempt"] == 3) for item in items)


def test_websocket_routes_are_not_affected() -> None:
    app = FastAPI(dependencies=[Depends(reject_unknown_query)])

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(websocket.query_params.get("token", ""))
        await websocket.close()

    @app.get("/plain")
    async def plain(limit: int = 1) -> dict[str, int]:
        return {"limit": limit}

    with TestClient(app) as client:
        with client.websocket_connect("/ws?token=abc") as connection:
            assert connection.receive_text() == "abc"
        assert client.get("/plain?limit=2").json() == {"limit": 2}
        refused = client.get("/plain?limt=2")
        assert refused.status_code == 400
        assert refused.json()["detail"] == "unknown query parameter 'limt' for /plain; known: limit"
