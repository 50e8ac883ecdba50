"""GET /metrics over a real server: the exposition passes the real `promtool check metrics`,
OpenMetrics on request, the families the docs list, bounded labels with no secret in them,
and a key (Bearer, as Prometheus sends it) when metrics are not public."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from apiwatch.simulator import Scenario, Simulator
from tests.api.test_api import ADMIN_KEY, SECRET
from tests.api.test_live import Live

FAMILIES = {
    "apiwatch_probes",
    "apiwatch_probe_duration_seconds",
    "apiwatch_probe_success",
    "apiwatch_provider_status",
    "apiwatch_rate_limit_used_ratio",
    "apiwatch_rate_limit_exhaustion_seconds",
    "apiwatch_requests_skipped",
    "apiwatch_key_status",
    "apiwatch_circuit_breaker_state",
    "apiwatch_data_age_seconds",
    "apiwatch_data_deviation_ratio",
    "apiwatch_schedule_lateness_seconds",
    "apiwatch_schedule_runs",
    "apiwatch_schedule_compliance_ratio",
    "apiwatch_book_check_failing",
    "apiwatch_book_spread_bps",
    "apiwatch_book_depth_quote",
    "apiwatch_anomaly_score",
    "apiwatch_alerts_sent",
    "apiwatch_alert_deliveries_failed",
    "apiwatch_http_requests",
    "apiwatch_http_request_duration_seconds",
    "apiwatch_http_rejections",
    "apiwatch_recorder_queue_depth",
    "apiwatch_recorder_rows_written",
    "apiwatch_recorder_rows_dropped",
    "apiwatch_recorder_flush_duration_seconds",
    "apiwatch_event_loop_lag_seconds",
    "apiwatch_scheduler_runs_limit",
    "apiwatch_scheduler_runs_active",
    "apiwatch_scheduler_runs_waiting",
    "apiwatch_scheduler_slots_skipped",
    "apiwatch_live_connections",
    "process_cpu_seconds",
}


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        message = "promtool is not installed (Debian package `prometheus`; .ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


async def _activity(client: httpx.AsyncClient, sim: Simulator) -> None:
    """Checks of every provider, one failing, collections, and refused requests."""
    sim.set_scenario("tronscan", Scenario("down", {"status": 503}))
    assert (await client.post("/api/schedule/trigger", json={})).status_code == 200
    ran = await client.post("/api/schedule/trigger", json={"collect": True})
    assert ran.status_code == 200, ran.text
    await client.get("/api/status", headers={"X-API-Key": "aw_wrong"})
    await client.get("/api/status", headers={"X-API-Key": ""})
    await client.get("/api/no/such/route/abc123")
    await asyncio.sleep(0.2)


async def test_the_exposition_passes_promtool_and_has_every_family(live: Live) -> None:
    client = live.http
    await _activity(client, live.sim)
    response = await client.get("/metrics", headers={"X-API-Key": ""})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    checked = subprocess.run(
        [promtool(), "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert set(families) >= FAMILIES, sorted(FAMILIES - set(families))

    def samples(name: str) -> list[Any]:
        return families[name].samples

    probes = {
        (s.labels["provider"], s.labels["outcome"])
        for s in samples("apiwatch_probes")
        if s.name.endswith("_total")
    }
    assert ("binance", "ok") in probes and ("tronscan", "server_error") in probes
    success = {s.labels["provider"]: s.value for s in samples("apiwatch_probe_success")}
    assert success["binance"] == 1.0 and success["tronscan"] == 0.0
    status = {
        (s.labels["provider"], s.labels["status"]): s.value
        for s in samples("apiwatch_provider_status")
    }
    assert status[("binance", "online")] == 1.0 and status[("binance", "offline")] == 0.0
    assert status[("tronscan", "degraded")] == 1.0
    ratios = {
        (s.labels["provider"], s.labels["window"])
        for s in samples("apiwatch_rate_limit_used_ratio")
    }
    assert ("coingecko", "minute") in ratios
    assert any(s.labels["key"] == "ETHERSCAN_KEY_1" for s in samples("apiwatch_key_status"))
    assert {s.labels["item"] for s in samples("apiwatch_data_age_seconds")}
    rejected = {s.labels["reason"] for s in samples("apiwatch_http_rejections")}
    assert {"invalid_key", "missing_key"} <= rejected
    routes = {s.labels["route"] for s in samples("apiwatch_http_requests")}
    assert "/api/schedule/trigger" in routes and "<unmatched>" in routes
    assert not [r for r in routes if "abc123" in r]  # a raw path never becomes a label
    # Keys (provider keys and apiwatch's own) never appear, in labels or anywhere else.
    assert SECRET not in text and ADMIN_KEY not in text


async def test_openmetrics_is_served_when_the_scraper_asks_for_it(live: Live) -> None:
    client = live.http
    response = await client.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")
    assert "apiwatch_provider_status" in response.text


@pytest.mark.parametrize("live", [{"metrics_public": False, "public_read": True}], indirect=True)
async def test_private_metrics_take_a_bearer_key_as_prometheus_sends_it(live: Live) -> None:
    client = live.http
    # Public reads (as in the demo) do not open metrics made private.
    status = await client.get("/api/status", headers={"X-API-Key": ""})
    assert status.status_code == 200
    anonymous = await client.get("/metrics", headers={"X-API-Key": ""})
    bearer = await client.get(
        "/metrics", headers={"X-API-Key": "", "Authorization": f"Bearer {ADMIN_KEY}"}
    )
    wrong = await client.get("/metrics", headers={"X-API-Key": "", "Authorization": "Bearer x"})
    assert anonymous.status_code == 401
    assert bearer.status_code == 200 and "apiwatch_probes" in bearer.text
    assert wrong.status_code == 401


async def test_metrics_stay_out_of_the_openapi_document(live: Live) -> None:
    client = live.http
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert "/metrics" not in paths
