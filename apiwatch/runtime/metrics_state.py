"""The scrape-time half of the metrics: families read from the running monitor's state
when Prometheus asks, so nothing on the probe path keeps them.

Budgets live in a store that may be Redis, so `refresh()` (awaited by the /metrics route)
reads them first; `collect()` is synchronous, as prometheus-client requires, and only reads
memory. One series per state is exported with value 1 for the current state and 0 for the
others (`apiwatch_provider_status{status="offline"} == 1`), the Prometheus way for enums.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)

from apiwatch.budget.decisions import WindowUsage
from apiwatch.budget.keys import KeyStatus
from apiwatch.domain import Status
from apiwatch.probe.breaker import CircuitState
from apiwatch.runtime.metrics_text import TextFamily

if TYPE_CHECKING:
    from apiwatch.runtime.core import Runtime

INF = float("inf")
_STATUSES = tuple(status.value for status in Status)


def _enum_family(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


class StateCollector:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._budgets: list[WindowUsage] = []

    async def refresh(self) -> None:
        guard = self._runtime.engine.guard
        self._budgets = await guard.gate.snapshot() if guard is not None else []
        # Readings change every few hours and any process may take them: a minute is fresh.
        await self._runtime.certificates.load(max_age_s=60.0)

    def describe(self) -> list[Metric]:
        return []  # collected fresh each time: nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        runtime = self._runtime
        yield from self._budget_families()
        yield from self._key_families(runtime)
        yield from self._data_families(runtime)
        yield from self._book_families(runtime)
        yield from self._process_families(runtime)
        yield from self._certificate_families(runtime)

    def text_families(self) -> list[TextFamily]:
        """The families with a series per provider, read now (on the event loop) and
        written out later (`metrics_text`, in a worker thread)."""
        runtime = self._runtime
        status = TextFamily(
            "apiwatch_provider_status",
            "1 for the provider's current status (online, degraded, offline, unknown).",
            "gauge",
            ["provider", "status"],
        )
        for provider, word in runtime.tracker.statuses().items():
            if not self._judged(runtime, provider):
                continue
            for each in _STATUSES:
                status.add((provider, each), 1.0 if word == each else 0.0)
        success = TextFamily(
            "apiwatch_probe_success",
            "1 when the endpoint's last check succeeded (ok or slow), else 0.",
            "gauge",
            ["provider", "endpoint"],
        )
        for labels, value in sorted(runtime.metrics.last_success.items()):
            success.add(labels, value)
        anomaly = TextFamily(
            "apiwatch_anomaly_score",
            "Largest |z| of the provider's endpoints' newest latencies (0: usual).",
            "gauge",
            ["provider"],
        )
        alerts = runtime.alerts
        for provider, score in sorted((alerts.rules.anomaly_scores() if alerts else {}).items()):
            anomaly.add((provider,), score)
        breaker = TextFamily(
            "apiwatch_circuit_breaker_state",
            "1 for the breaker's current state (closed, open, half_open).",
            "gauge",
            ["provider", "state"],
        )
        guard = runtime.engine.guard
        if guard is not None:
            # Breakers only where this process probes (an API process has none).
            owns = runtime.sharing.owns
            for provider in sorted(p for p in runtime.catalogue.providers if owns(p)):
                current = guard.breaker.state(provider).state
                for each in CircuitState:
                    breaker.add((provider, each.value), 1.0 if current is each else 0.0)
        return [status, success, anomaly, breaker]

    def _judged(self, runtime: Runtime, provider: str) -> bool:
        """Whether this process's view of the provider is its own: a worker probing a share
        exports only that share (else the stale view of the others' providers would sit
        next to theirs); an API process exports all, as adopted from the workers."""
        return runtime.settings.role == "api" or runtime.sharing.owns(provider)

    def _budget_families(self) -> Iterator[Metric]:
        # `tier` (ip, endpoint, key) and `scope` (the endpoint or key's variable, "" for the
        # ip tier) tell apart OKX's ticker and books windows, both `2s`.
        used = GaugeMetricFamily(
            "apiwatch_rate_limit_used_ratio",
            "Share of the window's limit used in its current period (0 to 1).",
            labels=["provider", "window", "tier", "scope"],
        )
        exhaustion = GaugeMetricFamily(
            "apiwatch_rate_limit_exhaustion_seconds",
            "Seconds until the window fills at its pace so far; +Inf when not before it resets.",
            labels=["provider", "window", "tier", "scope"],
        )
        now = time.time()
        for usage in self._budgets:
            labels = [usage.provider, usage.window, usage.tier, usage.scope]
            used.add_metric(labels, usage.used / usage.limit if usage.limit else 0.0)
            at = usage.forecast_exhausted_at
            exhaustion.add_metric(labels, INF if at is None else max(0.0, at.timestamp() - now))
        yield used
        yield exhaustion

    def _key_families(self, runtime: Runtime) -> Iterator[Metric]:
        guard = runtime.engine.guard
        keys = _enum_family(
            "apiwatch_key_status",
            "1 for each provider key's current status; `key` is the variable's name.",
            ["provider", "key", "status"],
        )
        if guard is not None:
            # Keys only where this process probes (an API process has none).
            owns = runtime.sharing.owns
            for provider, pool in sorted(guard.keys.items()):
                if not owns(provider):
                    continue
                for key in pool.keys:
                    current_key = pool.status(key)
                    for each_key in KeyStatus:
                        keys.add_metric(
                            [provider, key.env_name, each_key.value],
                            1.0 if current_key is each_key else 0.0,
                        )
        yield keys

    def _data_families(self, runtime: Runtime) -> Iterator[Metric]:
        age = GaugeMetricFamily(
            "apiwatch_data_age_seconds",
            "Age of the newest collected value (its own timestamp, else when it was fetched).",
            labels=["provider", "item"],
        )
        deviation = GaugeMetricFamily(
            "apiwatch_data_deviation_ratio",
            "|value - median across providers| / median, for items two or more providers give.",
            labels=["provider", "item"],
        )
        now = time.time()
        values: dict[str, list[tuple[str, Decimal]]] = {}
        for (provider, item), point in sorted(runtime.collection.latest.items()):
            moment = point.data_timestamp or point.fetched_at
            if moment is not None:
                age.add_metric([provider, item], max(0.0, now - moment.timestamp()))
            if point.value is not None:
                values.setdefault(item, []).append((provider, point.value))
        for item, given in sorted(values.items()):
            if len(given) < 2:
                continue
            median = statistics.median(value for _, value in given)
            if median == 0:
                continue
            for provider, value in given:
                deviation.add_metric([provider, item], float(abs(value - median) / abs(median)))
        yield age
        yield deviation
        compliance = GaugeMetricFamily(
            "apiwatch_schedule_compliance_ratio",
            "Share of a schedule's planned runs since start that began on time.",
            labels=["schedule"],
        )
        for schedule, counts in sorted(runtime.metrics.runs.items()):
            total = sum(counts.values())
            compliance.add_metric([schedule], counts.get("on_time", 0) / total)
        yield compliance

    def _book_families(self, runtime: Runtime) -> Iterator[Metric]:
        failing = GaugeMetricFamily(
            "apiwatch_book_check_failing",
            "1 while the exchange's latest book fails the integrity check, 0 while it passes "
            "(checks the book gives nothing to judge are left out).",
            labels=["provider", "item", "check"],
        )
        spread = GaugeMetricFamily(
            "apiwatch_book_spread_bps",
            "Spread of the latest book in basis points of its mid.",
            labels=["provider", "item"],
        )
        depth = GaugeMetricFamily(
            "apiwatch_book_depth_quote",
            "Quote notional of the latest book's levels within ±1 % of its mid.",
            labels=["provider", "item"],
        )
        for row in runtime.collection.books_view():
            labels = [row["provider"], row["item"]]
            for check, verdict in row["checks"].items():
                if verdict != "not_judged":
                    failing.add_metric([*labels, check], 1.0 if verdict == "failed" else 0.0)
            if row["spread_bps"] is not None:
                spread.add_metric(labels, float(row["spread_bps"]))
            depth.add_metric(labels, float(row["depth"]))
        yield failing
        yield spread
        yield depth

    def _certificate_families(self, runtime: Runtime) -> Iterator[Metric]:
        expiry = GaugeMetricFamily(
            "apiwatch_tls_cert_expiry_timestamp_seconds",
            "Unix time of the earliest expiry in the host's certificate chain, as read from "
            "the provider's probes (blackbox_exporter's probe_ssl_earliest_cert_expiry).",
            labels=["provider", "host"],
        )
        verified = GaugeMetricFamily(
            "apiwatch_tls_cert_verified",
            "1 when the host's certificate verified (chain and host name) at its last reading.",
            labels=["provider", "host"],
        )
        for (provider, host, port), reading in sorted(runtime.certificates.readings.items()):
            if not self._judged(runtime, provider):
                continue
            labels = [provider, host if port == 443 else f"{host}:{port}"]
            expires = reading.expires_at
            if expires is not None:
                expiry.add_metric(labels, expires.timestamp())
            verified.add_metric(labels, 1.0 if reading.verified else 0.0)
        yield expiry
        yield verified

    def _process_families(self, runtime: Runtime) -> Iterator[Metric]:
        recorder = runtime.recorder
        yield GaugeMetricFamily(
            "apiwatch_recorder_queue_depth",
            "Rows waiting to be written.",
            value=recorder.pending,
        )
        yield CounterMetricFamily(
            "apiwatch_recorder_rows_written", "Rows written to the database.", recorder.written
        )
        yield CounterMetricFamily(
            "apiwatch_recorder_rows_dropped",
            "Rows lost: dropped from a full queue, or refused by the database.",
            recorder.dropped + recorder.rejected,
        )
        yield SummaryMetricFamily(
            "apiwatch_recorder_flush_duration_seconds",
            "Time to write one batch of rows.",
            count_value=recorder.batches,
            sum_value=recorder.flush_seconds,
        )
        scheduler = runtime.scheduler
        limit = scheduler.limit
        yield GaugeMetricFamily(
            "apiwatch_event_loop_lag_seconds",
            "Median lateness of a short timer over the last second: how far behind the event "
            "loop runs (0 until read; not read when APIWATCH_PROBE_LAG_TARGET_MS is 0).",
            value=limit.lag_s,
        )
        yield GaugeMetricFamily(
            "apiwatch_scheduler_runs_limit",
            "Scheduled runs allowed at once: APIWATCH_PROBE_CONCURRENCY, less while the event "
            "loop lags.",
            value=limit.limit,
        )
        yield GaugeMetricFamily(
            "apiwatch_scheduler_runs_active", "Scheduled runs going now.", value=limit.active
        )
        yield GaugeMetricFamily(
            "apiwatch_scheduler_runs_waiting",
            "Scheduled runs waiting for a place.",
            value=limit.waiting,
        )
        skipped = CounterMetricFamily(
            "apiwatch_scheduler_slots_skipped",
            "Planned slots not run: overlap (the job's previous run still going or waiting), "
            "missed (the event loop stalled past the slot).",
            labels=["reason"],
        )
        for reason, count in sorted(scheduler.skipped.items()):
            skipped.add_metric([reason], count)
        yield skipped
        feed = runtime.feed
        yield GaugeMetricFamily(
            "apiwatch_live_connections", "Clients on /ws/live.", value=len(feed.connections)
        )
        yield CounterMetricFamily(
            "apiwatch_live_clients_disconnected_stuck",
            "Live feed clients disconnected because their socket stayed stuck.",
            feed.disconnected_stuck,
        )
