"""A real Prometheus (Debian package `prometheus`) scrapes a running `apiwatch demo`: it
answers queries for per-provider series, and every PromQL expression of the Grafana
dashboard (deploy/grafana/apiwatch.json) parses and returns data while the demo runs.

The demo runs with private metrics, so Prometheus scrapes with a Bearer key as its
`authorization` setting sends it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.inbound.test_redis_processes import free_port

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "apiwatch.json"
APIWATCH = str(Path(sys.executable).with_name("apiwatch"))
KEY = "aw_prometheus-scrape-test-key-00000000000000"
# What Grafana puts in for its variables, as it would for "All" over a short range.
GRAFANA_VARIABLES = {"$provider": ".*", "$__rate_interval": "15s", "$__range": "5m"}


@dataclass
class Stack:
    prometheus: str
    apiwatch: str


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        message = f"{name} is not installed (Debian package `prometheus`; .ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def _wait(url: str, process: subprocess.Popen[bytes], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            pytest.fail(f"{what} exited early: {output[-3000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not answer {url} within {timeout:.0f} s")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus = _binary("prometheus")
    tmp = tmp_path_factory.mktemp("prometheus")
    port, sim_port, prom_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'demo.db'}",
        "APIWATCH_ADMIN_KEY": KEY,
        "APIWATCH_METRICS_PUBLIC": "false",
    }
    env.pop("REDIS_URL", None)
    demo = subprocess.Popen(
        [APIWATCH, "demo", "--port", str(port), "--sim-port", str(sim_port), "--interval", "1"],
        cwd=tmp,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    config = tmp / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: apiwatch\n"
        f"    authorization: {{credentials: {KEY}}}\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
    )
    server = subprocess.Popen(
        [
            prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
            "--log.level=warn",
        ],
        cwd=tmp,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait(f"http://127.0.0.1:{port}/healthz", demo, "apiwatch demo")
        _wait(f"http://127.0.0.1:{prom_port}/-/ready", server, "prometheus")
        yield Stack(f"http://127.0.0.1:{prom_port}", f"http://127.0.0.1:{port}")
    finally:
        for process in (server, demo):
            process.terminate()
        for process in (server, demo):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def query(stack: Stack, expr: str) -> dict[str, Any]:
    response = httpx.get(f"{stack.prometheus}/api/v1/query", params={"query": expr}, timeout=10)
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success", (expr, body)
    return body["data"]  # type: ignore[no-any-return]


def eventually(
    stack: Stack, expr: str, timeout: float = 90, until: Any = bool
) -> list[dict[str, Any]]:
    """The query's result once `until(result)` holds (the demo needs a few scrapes)."""
    deadline = time.monotonic() + timeout
    while True:
        result = query(stack, expr)["result"]
        if until(result) or time.monotonic() > deadline:
            return result  # type: ignore[no-any-return]
        time.sleep(1)


def dashboard_expressions() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    found = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(name, value)
            found.append((panel["title"], expr))
    return found


# Words of PromQL that are not metric names (aggregations and functions are told apart by
# the `(` that follows them).
PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    grouping = r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"
    expr = re.sub(grouping, "", expr)  # label lists
    names = set()
    for match in re.finditer(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*", expr):
        if expr[match.end() :].lstrip().startswith("("):
            continue  # a function or aggregation
        if match.group().lower() not in PROMQL_WORDS:
            names.add(match.group())
    return names


def exposed_names(exposition: str) -> set[str]:
    """Every series name the text exposition can carry: those with samples, and those a
    family announces in its TYPE line though it has none yet (a counter no event has
    touched, such as failed alert deliveries)."""
    suffixes = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}
    names = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            names.add(name)
            names.update(name + suffix for suffix in suffixes.get(kind, ()))
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def test_metric_names_are_read_from_the_promql_of_a_panel() -> None:
    skipped = (
        'sum by (provider, reason) (rate(apiwatch_requets_skipped_total{provider=~"a|b"}'
        "[15s])) or vector(0)"
    )
    p95 = (
        "histogram_quantile(0.95, sum by (route, le) "
        "(rate(apiwatch_http_request_duration_seconds_bucket[5m] offset 1m)))"
    )
    ratio = "sum(rate(a_total[1m])) / on(provider) group_left(x) b_count > bool 0.5"
    assert metric_names(skipped) == {"apiwatch_requets_skipped_total"}  # misspelt: caught
    assert metric_names(p95) == {"apiwatch_http_request_duration_seconds_bucket"}
    assert metric_names(ratio) == {"a_total", "b_count"}
    exposition = (
        "# HELP x_seconds A histogram.\n# TYPE x_seconds histogram\n"
        "# HELP y_total A counter with no samples yet.\n# TYPE y_total counter\n"
        'z_ratio{provider="a"} 0.5\n'
    )
    names = exposed_names(exposition)
    assert {"x_seconds_bucket", "x_seconds_count", "y_total", "z_ratio"} <= names
    assert "apiwatch_requets_skipped_total" not in names


def test_prometheus_scrapes_apiwatch_with_a_bearer_key_and_answers_per_provider(
    stack: Stack,
) -> None:
    anonymous = httpx.get(f"{stack.apiwatch}/metrics", timeout=10)
    up = eventually(stack, 'up{job="apiwatch"} == 1')
    wanted = {"binance", "coingecko", "etherscan"}
    probes = eventually(
        stack,
        "sum by (provider) (apiwatch_probes_total)",
        until=lambda result: wanted <= {series["metric"]["provider"] for series in result},
    )
    online = eventually(stack, 'apiwatch_provider_status{provider="binance",status="online"}')
    assert anonymous.status_code == 401  # private metrics: the scrape above carried the key
    assert up, "Prometheus never scraped apiwatch successfully"
    providers = {series["metric"]["provider"] for series in probes}
    assert wanted <= providers
    assert online and online[0]["value"][1] in ("0", "1")


def test_every_dashboard_panel_query_parses_and_returns_data(stack: Stack) -> None:
    expressions = dashboard_expressions()
    assert len(expressions) >= 20
    eventually(stack, "apiwatch_probes_total")
    empty = [(title, expr) for title, expr in expressions if not eventually(stack, expr, 120)]
    assert not empty, empty


def test_every_metric_a_panel_queries_is_in_apiwatch_exposition(stack: Stack) -> None:
    # Four panels end in `or vector(0)` (counters that may stay untouched while the demo
    # runs), so returning data proves nothing about their names: each name must be one
    # apiwatch exports.
    scraped = httpx.get(
        f"{stack.apiwatch}/metrics", headers={"Authorization": f"Bearer {KEY}"}, timeout=30
    )
    assert scraped.status_code == 200
    exposed = exposed_names(scraped.text)
    used = {(title, name) for title, expr in dashboard_expressions() for name in metric_names(expr)}
    unknown = sorted((title, name) for title, name in used if name not in exposed)
    assert not unknown, unknown
    # The parser saw the names behind `or vector(0)`, not just the other panels'.
    assert {name for _, name in used} >= {
        "apiwatch_requests_skipped_total",
        "apiwatch_alerts_sent_total",
        "apiwatch_alert_deliveries_failed_total",
        "apiwatch_http_rejections_total",
    }


def test_the_dashboard_has_a_provider_variable_and_imports_into_grafana_10(stack: Stack) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert (
        variables["provider"]["query"]["query"]
        == "label_values(apiwatch_provider_status, provider)"
    )
    assert dashboard["schemaVersion"] >= 38  # Grafana 10's
    # Waited for, not read once: run on its own, this test comes before the first scrape.
    values = eventually(
        stack,
        "group by (provider) (apiwatch_provider_status)",
        until=lambda result: len(result) >= 10,
    )
    assert len(values) >= 10  # what the variable's query offers: every provider
    titles = {panel["title"] for panel in dashboard["panels"]}
    assert {"Provider status", "Probe latency p95", "Budget exhaustion forecast"} <= titles
