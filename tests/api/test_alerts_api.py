"""Alerting end to end: a provider goes down in the simulator, apiwatch raises alerts,
groups them and delivers them to real local receivers (routed by severity); the API lists,
acknowledges, reports on and silences them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from apiwatch.settings import Settings
from apiwatch.simulator import Scenario, Simulator
from tests.alerting.channels.receivers import HttpReceiver
from tests.api.test_api import KEYED, serve
from tests.conftest import empty_tables

ADMIN = "aw_alerts-tests-admin-key-00000000000000"


@dataclass
class Stack:
    client: httpx.AsyncClient
    sim: Simulator
    receiver: HttpReceiver


def alerts_file(tmp_path: Path, receiver: HttpReceiver) -> Path:
    path = tmp_path / "alerts.yaml"
    path.write_text(
        f"""
group_window_s: 0.2
group_interval_s: 0.5
channels:
  slack: {{kind: webhook, url: "{receiver.url("/warning")}"}}
  pagerduty: {{kind: webhook, url: "{receiver.url("/critical")}", secret: hmac-secret-1}}
"""
    )
    return path


@pytest.fixture
async def stack(
    migrated_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Stack]:
    await empty_tables(migrated_db_url)
    for name, value in KEYED.items():
        monkeypatch.setenv(name, value)
    receiver = HttpReceiver()
    await receiver.start()
    async with Simulator(port=0) as sim:
        settings = Settings(
            _env_file=None,
            database_url=migrated_db_url,
            upstream_override=sim.url,
            recorder_flush_ms=10,
            admin_key=ADMIN,
            alerts_file=alerts_file(tmp_path, receiver),
            # No breaker in the way: the recovery check must reach the simulator.
            breaker_failure_threshold=50,
        )
        server, task, port = await serve(settings)
        try:
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": ADMIN}, timeout=30
            ) as client:
                yield Stack(client, sim, receiver)
        finally:
            server.should_exit = True
            await task
            await receiver.stop()


async def check(stack: Stack, provider: str) -> None:
    response = await stack.client.post("/api/schedule/trigger", json={"provider": provider})
    assert response.status_code == 200, response.text


async def wait_for(predicate, timeout: float = 10.0) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


async def test_a_provider_going_down_pages_once_and_its_recovery_resolves(stack: Stack) -> None:
    stack.sim.set_scenario("binance", Scenario("down", {"status": 503}))
    went_down = time.monotonic()
    for _ in range(3):
        await check(stack, "binance")
    await wait_for(lambda: stack.receiver.at("/critical"))
    delay = time.monotonic() - went_down
    critical = stack.receiver.at("/critical")[0]
    body = critical.json()
    assert body["severity"] == "critical" and body["state"] == "firing"
    assert body["reason"] == "first_notification"
    assert any(a["provider"] == "binance" for a in body["alerts"])
    assert critical.headers.get("X-Apiwatch-Signature", "").startswith("sha256=")
    assert delay < 10
    # Degraded (a warning) turned offline within the group window: the warning was
    # superseded before it went out, so only the page was sent.
    assert stack.receiver.at("/warning") == []

    async def sent_alerts() -> list[dict]:
        listed = await stack.client.get("/api/alerts", params={"provider": "binance"})
        return listed.json()["alerts"]

    # The row is marked sent once the delivery returns, just after the receiver has it.
    for _ in range(100):
        alerts = await sent_alerts()
        if any(a["sent_at"] for a in alerts if a["severity"] == "critical"):
            break
        await asyncio.sleep(0.05)
    active = {"alerts": alerts}
    rules = {(a["rule"], a["severity"]) for a in active["alerts"]}
    assert ("provider_status", "critical") in rules
    alert = next(a for a in active["alerts"] if a["severity"] == "critical")
    assert alert["sent_at"] is not None and alert["notifications"] == 1

    # More failures while it stays down do not send it again (dedup).
    for _ in range(2):
        await check(stack, "binance")
    await asyncio.sleep(0.8)
    assert len(stack.receiver.at("/critical")) == 1

    stack.sim.set_scenario("binance", Scenario("healthy", {}))
    await check(stack, "binance")
    await wait_for(
        lambda: any(r.json()["state"] == "resolved" for r in stack.receiver.at("/critical"))
    )
    history = (await stack.client.get("/api/alerts/history", params={"provider": "binance"})).json()
    newest_first = [a for a in history["alerts"] if a["rule"] == "provider_status"]
    by_severity = {a["severity"]: a for a in reversed(newest_first)}
    assert by_severity["critical"]["state"] == "resolved" and by_severity["critical"]["resolved_at"]
    # One good check after five failures leaves the error rate high: degraded, a warning.
    assert by_severity["warning"]["state"] == "firing"


async def test_acknowledge_records_who_and_the_report_explains_the_alert(stack: Stack) -> None:
    stack.sim.set_scenario("coingecko", Scenario("down", {"status": 500}))
    for _ in range(3):
        await check(stack, "coingecko")
    await wait_for(lambda: stack.receiver.at("/critical"))
    alerts = (await stack.client.get("/api/alerts", params={"severity": "critical"})).json()
    alert_id = alerts["alerts"][0]["id"]
    acked = await stack.client.post(f"/api/alerts/{alert_id}/acknowledge", json={"by": "alice"})
    assert acked.status_code == 200, acked.text
    assert acked.json()["acknowledged_by"] == "alice" and acked.json()["acknowledged_at"]
    for _ in range(100):  # deliveries are stored once the delivery returns
        report = (await stack.client.get(f"/api/alerts/{alert_id}/report")).json()
        if report["deliveries"]:
            break
        await asyncio.sleep(0.05)
    assert report["report"] and report["triage"]["escalation"] in ("low", "high", "page")
    assert report["deliveries"] and report["deliveries"][0]["delivered"] is True
    assert (await stack.client.post("/api/alerts/424242/acknowledge")).status_code == 404
    assert (await stack.client.get("/api/alerts/99999999999/report")).status_code == 404


async def test_a_silence_holds_matching_alerts_back_with_the_reason(stack: Stack) -> None:
    created = await stack.client.post(
        "/api/silences",
        json={"matchers": {"provider": "tronscan"}, "duration_s": 600, "comment": "maintenance"},
    )
    assert created.status_code == 201, created.text
    stack.sim.set_scenario("tronscan", Scenario("down", {"status": 502}))
    for _ in range(3):
        await check(stack, "tronscan")
    await asyncio.sleep(1.0)
    assert not [r for r in stack.receiver.requests if b"tronscan" in r.body]
    active = (await stack.client.get("/api/alerts", params={"provider": "tronscan"})).json()
    assert active["alerts"] and {a["decision_reason"] for a in active["alerts"]} == {"silenced"}
    silences = (await stack.client.get("/api/silences")).json()["silences"]
    assert silences[0]["active"] is True and silences[0]["created_by"].startswith("admin")
    assert (await stack.client.delete(f"/api/silences/{silences[0]['id']}")).status_code == 204
    assert (await stack.client.delete(f"/api/silences/{silences[0]['id']}")).status_code == 404


async def test_alert_settings_are_shown_masked_and_bad_changes_get_a_4xx(stack: Stack) -> None:
    shown = (await stack.client.get("/api/alerts/settings")).json()
    assert shown["channels"]["pagerduty"]["secret"] == "***"
    assert "hmac-secret-1" not in str(shown)
    bad = await stack.client.put(
        "/api/alerts/settings", json={"rules": {"error_rate": {"warning_pct": "lots"}}}
    )
    # The body is any part of the settings; what is wrong once merged is a 400 naming it.
    assert bad.status_code == 400 and "error_rate" in bad.json()["detail"]
    good = await stack.client.put("/api/alerts/settings", json={"dedup_window_s": 120})
    assert good.status_code == 200 and good.json()["dedup_window_s"] == 120
    for body in ({"matchers": {}}, {"matchers": {"colour": "red"}, "duration_s": 5}):
        assert (await stack.client.post("/api/silences", json=body)).status_code == 422
