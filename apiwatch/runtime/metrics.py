"""apiwatch's Prometheus metrics: counters and histograms kept as things happen.

`Metrics` owns registries of its own (several apps may share a process, as in tests): one
with the process collector and these event-driven families, one for the scrape-time
collector (`metrics_state`, registered by the runtime) that reads current state (statuses,
budgets, breakers, keys, data age) when Prometheus asks. `render` joins them.

Every label value comes from a bounded set: providers, endpoints, keys' variable names and
schedules from the catalogue, outcomes, statuses, windows and reasons from enums, routes as
templates (`<unmatched>` for the rest), methods outside the usual seven as `other`. No key,
URL or free text is ever a label. The listeners run inline on the probe path, so each keeps
its label children in a dict and does no more than a lookup and an increment; the two
per-probe families are plain counts exposed at scrape time (`metrics_probes`).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.exposition import choose_encoder

from apiwatch.alerting.delivery import DeliveryOutcome
from apiwatch.domain import Outcome, ProbeResult, SkipReason
from apiwatch.inbound import UsageRecord
from apiwatch.runtime.metrics_probes import ProbeFamilies
from apiwatch.runtime.metrics_text import TextFamily, pieces

PROBE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
LATENESS_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
SKIP_REASONS = tuple(reason.value for reason in SkipReason)


def skip_reason(result: ProbeResult) -> str:
    """The skipped result's reason as its SkipReason word (the reason text has details)."""
    for reason in SKIP_REASONS:
        if result.reason.startswith(reason):
            return reason
    return "other"


class Metrics:
    def __init__(self) -> None:
        # No `_created` series next to every counter and histogram: they would double the
        # series Prometheus stores and no dashboard here reads them.
        disable_created_metrics()
        self.registry = registry = CollectorRegistry(auto_describe=True)
        # The scrape-time families read the runtime's state, so they render on the event
        # loop; this registry's families are thread-safe and render in a worker thread.
        self.state_registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        # apiwatch_probes_total and apiwatch_probe_duration_seconds: plain counts, exposed
        # at scrape time (metrics_probes), not a labelled child per provider.
        self.probe_families = ProbeFamilies(PROBE_BUCKETS)
        self.skipped = Counter(
            "apiwatch_requests_skipped",
            "Probes not sent, by reason (budget, open breaker, no key, disabled).",
            ["provider", "reason"],
            registry=registry,
        )
        self.alerts_sent = Counter(
            "apiwatch_alerts_sent",
            "Notifications delivered, by severity and channel.",
            ["severity", "channel"],
            registry=registry,
        )
        self.deliveries_failed = Counter(
            "apiwatch_alert_deliveries_failed",
            "Notifications a channel did not take after every retry.",
            ["channel"],
            registry=registry,
        )
        self.http_requests = Counter(
            "apiwatch_http_requests",
            "Requests to apiwatch's own API by route template, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.http_duration = Histogram(
            "apiwatch_http_request_duration_seconds",
            "Time to answer a request to apiwatch's own API, by route template.",
            ["route", "method"],
            buckets=HTTP_BUCKETS,
            registry=registry,
        )
        self.http_rejections = Counter(
            "apiwatch_http_rejections",
            "Requests refused by the key middleware, by reason.",
            ["reason"],
            registry=registry,
        )
        self.schedule_lateness = Histogram(
            "apiwatch_schedule_lateness_seconds",
            "How late a collection run started after its planned time, per schedule.",
            ["schedule"],
            buckets=LATENESS_BUCKETS,
            registry=registry,
        )
        self.schedule_runs = Counter(
            "apiwatch_schedule_runs",
            "Planned collection runs by result (on_time, late, skipped), per schedule.",
            ["schedule", "result"],
            registry=registry,
        )
        self._children: dict[tuple[Any, ...], Any] = {}
        # (provider, endpoint, outcome) -> (outcome label, whether latency is kept, success)
        self._probe_kinds: dict[tuple[str, str, Outcome], tuple[str, bool, float]] = {}
        # (provider, endpoint) -> 1.0 / 0.0 of the last final attempt (blackbox's probe_success)
        self.last_success: dict[tuple[str, str], float] = {}
        self.runs: dict[str, dict[str, int]] = {}  # schedule -> result -> count
        # Families with a series per provider, read at scrape time (the runtime's state).
        self.text_sources: list[Callable[[], list[TextFamily]]] = []

    def _child(self, family: Any, *labels: str) -> Any:
        key = (id(family), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = family.labels(*labels)
        return child

    # -- listeners ----------------------------------------------------------------------------

    def observe(self, event: object) -> None:
        """Bus listener: count each attempt (one dict lookup finds all its children)."""
        if type(event) is not ProbeResult:
            return
        result: ProbeResult = event
        provider, endpoint, outcome = result.provider, result.endpoint, result.outcome
        key = (provider, endpoint, outcome)
        kind = self._probe_kinds.get(key)
        if kind is None:
            kind = self._probe_kinds[key] = self._probe_kind(provider, endpoint, outcome)
        label, sent, success = kind
        families = self.probe_families
        families.count(provider, endpoint, label)
        if not sent:  # skipped: nothing was sent
            self._child(self.skipped, provider, skip_reason(result)).inc()
            return
        if result.latency_ms is not None and outcome is not Outcome.TIMEOUT:
            families.observe(provider, endpoint, result.latency_ms / 1000)
        if result.final:
            self.last_success[(provider, endpoint)] = success

    def _probe_kind(
        self, provider: str, endpoint: str, outcome: Outcome
    ) -> tuple[str, bool, float]:
        if outcome is Outcome.SKIPPED:
            return outcome.value, False, 0.0
        # The latency series exists from the first sent attempt, answered or not.
        self.probe_families.ensure(provider, endpoint)
        return outcome.value, True, 1.0 if outcome.is_success else 0.0

    def observe_usage(self, usage: UsageRecord) -> None:
        """Inbound usage listener: one record per request to apiwatch's API."""
        method = usage.method if usage.method in METHODS else "other"
        self._child(self.http_requests, usage.route, method, str(usage.status)).inc()
        self._child(self.http_duration, usage.route, method).observe(usage.latency_ms / 1000)
        if usage.refusal is not None:
            self._child(self.http_rejections, usage.refusal).inc()

    def observe_delivery(self, severity: str, outcome: DeliveryOutcome) -> None:
        if outcome.delivered:
            self._child(self.alerts_sent, severity, outcome.channel).inc()
        else:
            self._child(self.deliveries_failed, outcome.channel).inc()

    def observe_row(self, item: object) -> None:
        """Recorder tap: a `schedule_compliance` row is one planned collection run."""
        if not (isinstance(item, tuple) and item and item[0] == "schedule_compliance"):
            return
        row = item[1]
        schedule = f"{row['provider']}:{row['category']}"
        result = str(row["result"])
        counts = self.runs.setdefault(schedule, {})
        counts[result] = counts.get(result, 0) + 1
        self._child(self.schedule_runs, schedule, result).inc()
        if row.get("lateness_ms") is not None:
            self._child(self.schedule_lateness, schedule).observe(
                max(0.0, row["lateness_ms"]) / 1000
            )


def _without_escaping(accept: str) -> str:
    """The Accept header without its name-escaping choice: apiwatch's metric and label
    names are plain (letters, digits, underscores), so the answer is the same under every
    scheme but `dots` and `values`, which would rewrite them in the families the client
    library renders and not in the others. The answer names the scheme it used
    (`escaping=underscores` in its content type) for the scraper to read the names by."""
    return _ESCAPING.sub("", accept)


_ESCAPING = re.compile(r";\s*escaping=[^;,]*")


async def render(metrics: Metrics, accept: str) -> tuple[AsyncIterator[bytes], str]:
    """The exposition the scraper's Accept header asks for, in pieces, and its content type.

    What is read from the running monitor is read now, on the event loop: the scrape-time
    families that prometheus_client renders (a few dozen series) and the rows of the
    families with a series per provider (`text_sources`, the probe counts); the client
    library's families are rendered now too (the event-driven ones in a worker thread), so
    a failure there is a failed request, not a cut body. The per-provider text is written
    in a worker thread a piece at a time as the response is sent: at 10,000 providers it is
    a quarter of a million series and twenty megabytes, which would otherwise stall probes
    and the live feed, and be held whole."""
    encode, content_type = choose_encoder(_without_escaping(accept))
    openmetrics = content_type.startswith("application/openmetrics-text")
    state = encode(metrics.state_registry)
    families = metrics.probe_families.snapshot().families()
    for source in metrics.text_sources:
        families += source()
    # OpenMetrics ends with one "# EOF" (the state's, which comes last).
    events = (await asyncio.to_thread(encode, metrics.registry)).removesuffix(b"# EOF\n")

    async def body() -> AsyncIterator[bytes]:
        yield events
        written = pieces(families, openmetrics=openmetrics)
        while (piece := await asyncio.to_thread(next, written, None)) is not None:
            yield piece
        yield state

    return body(), content_type
