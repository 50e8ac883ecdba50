"""The running monitor: a `Runtime` holds the parts the composition built and handles what
they produce. Every result goes through `handle` (stored, published, judged for status);
checks, key tests, breaker persistence, budget snapshots, retention and roll-ups are asked of
it by the scheduler and the faces.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from apiwatch.alerting.maintenance import MaintenanceWindow
from apiwatch.alerting.manager import AlertManager
from apiwatch.analysis.freshness import DEFAULT_TTL_S
from apiwatch.budget.windows import period
from apiwatch.catalogue.loader import Catalogue
from apiwatch.catalogue.merge import Source
from apiwatch.catalogue.schema import ProviderSpec, ResolvedObjective
from apiwatch.collection.model import CollectionConfig
from apiwatch.collection.run import Collection
from apiwatch.collection.schedules import CollectionSchedules
from apiwatch.dependencies import Dependency
from apiwatch.domain import NO_HEADERS, ProbeResult, StatusChange, utcnow
from apiwatch.events import EventBus
from apiwatch.inbound import MemoryKeyStore
from apiwatch.probe.engine import ProbeEngine
from apiwatch.runtime import locations
from apiwatch.runtime.access import AccessControl
from apiwatch.runtime.breaker_saves import BreakerSaves
from apiwatch.runtime.certificates import CertificateBook
from apiwatch.runtime.feed import LiveFeed
from apiwatch.runtime.feed_messages import Message
from apiwatch.runtime.feed_status import adopt_remote, overall_status, status_snapshot
from apiwatch.runtime.health import Scope, run_checks
from apiwatch.runtime.housekeeping import Housekeeping
from apiwatch.runtime.live_catalogue import LiveCatalogue
from apiwatch.runtime.live_status import StatusTracker
from apiwatch.runtime.metrics import Metrics
from apiwatch.runtime.metrics_state import StateCollector
from apiwatch.runtime.retry_chains import RetryChains
from apiwatch.runtime.sharing import WorkSharing
from apiwatch.runtime.slo import SloService
from apiwatch.scheduler.loop import IntervalScheduler, Slot
from apiwatch.settings import Settings
from apiwatch.storage.recorder import Recorder
from apiwatch.storage.repositories import data as data_repo

log = structlog.get_logger("apiwatch.runtime")


@dataclass
class Runtime(Housekeeping):
    settings: Settings
    catalogue: Catalogue
    bus: EventBus
    tracker: StatusTracker
    engine: ProbeEngine
    recorder: Recorder
    db_engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    scheduler: IntervalScheduler
    # Publishes, stores and logs an event (see `announcer`).
    announce: Callable[[object], None]

    key_store: MemoryKeyStore = field(default_factory=MemoryKeyStore)
    alerts: AlertManager | None = None
    # The services apiwatch itself needs, by name ("database", "redis"): /healthz and
    # /api/status say which are away.
    dependencies: dict[str, Dependency] = field(default_factory=dict)
    # When the newest attempt started, kept here so /api/status answers without the database.
    last_check_at: datetime | None = None
    # Which providers this process probes and whether it leads (alone: all of them, yes).
    sharing: WorkSharing = field(default_factory=WorkSharing)
    # The maintenance file's windows (APIWATCH_MAINTENANCE_FILE), read once at start.
    maintenance_file: list[MaintenanceWindow] = field(default_factory=list)

    retries: RetryChains = field(init=False)
    breaker_saves: BreakerSaves = field(init=False)
    collection: Collection = field(init=False)
    schedules: CollectionSchedules = field(init=False)
    access: AccessControl = field(init=False)
    feed: LiveFeed = field(init=False)
    metrics: Metrics = field(init=False)
    metrics_state: StateCollector = field(init=False)
    slo: SloService = field(init=False)
    certificates: CertificateBook = field(init=False)
    # Providers changed through the API: where each came from, the catalogue version seen
    # (runtime/live_catalogue.py); set by `open_runtime`.
    live: LiveCatalogue | None = None
    # Whether health checks are scheduled in this process (providers added later get jobs).
    _health_scheduled: bool = field(init=False, default=False)
    # Roll-up kinds checked for a back-fill since start (once per process is enough).
    _backfilled: set[str] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self.breaker_saves = BreakerSaves(self.save_breakers)
        self.retries = RetryChains(
            probe=self._probe_and_handle,
            record=self.recorder.record,
            policy=self.engine.retry_policy,
            window_reset_in=self._window_reset_in,
        )
        settings = self.settings
        self.collection = Collection(
            catalogue=self.catalogue,
            engine=self.engine,
            handle=self.handle,
            record=self._record_collection,
            announce=self.announce,
            status_of=lambda pid: self.tracker.state(pid).status,
            known_items=self._known_items,
            config=CollectionConfig(
                ttl_s={**DEFAULT_TTL_S, **settings.freshness_ttl_s},
                divergence_pct=Decimal(str(settings.divergence_pct)),
                tolerance_max_s=settings.compliance_tolerance_s,
                tolerance_fraction=settings.compliance_tolerance_pct / 100,
                adaptive_categories=frozenset(settings.adaptive_categories),
                adaptive_move_pct=settings.adaptive_move_pct,
                adaptive_lookback_s=settings.adaptive_lookback_min * 60,
                adaptive_floor_s=settings.adaptive_floor_s,
            ),
        )
        self.schedules = CollectionSchedules(
            catalogue=self.catalogue,
            collection=self.collection,
            scheduler=self.scheduler,
            sessions=self.sessions,
            enabled=settings.collection_enabled,
            owns=lambda pid: self.sharing.owns(pid),
        )
        self.access = AccessControl(
            sessions=self.sessions,
            store=self.key_store,
            record=self.recorder.record,
            recheck_s=settings.api_key_recheck_s,
        )
        self.slo = SloService(
            catalogue=self.catalogue,
            sessions=self.sessions,
            poor_after=settings.slo_poor_after,
            file_windows=self.maintenance_file,
            defaults=ResolvedObjective(
                target=settings.slo_target, window_days=settings.slo_window_days
            ),
        )
        self.feed = LiveFeed(
            snapshot=self.status_snapshot,
            queue_size=settings.live_queue_size,
            status_interval_s=settings.live_status_interval_s,
            ping_interval_s=settings.live_ping_interval_s,
            stuck_after_s=settings.live_stuck_after_s,
        )

        self.certificates = CertificateBook(
            sessions=self.sessions, announce=self.announce, watch=self.engine.certificates
        )
        self.metrics = Metrics()
        self.metrics_state = StateCollector(self)
        self.metrics.state_registry.register(self.metrics_state)
        self.metrics.text_sources.append(self.metrics_state.text_families)

    def _record_collection(self, item: object) -> None:
        self.metrics.observe_row(item)  # compliance rows feed the schedule metrics
        self.recorder.record(item)

    async def status_snapshot(self) -> dict[str, object]:
        return await status_snapshot(self)

    def overall_status(self) -> dict[str, object]:
        return overall_status(self)

    def adopt_remote(self, msg: Message) -> None:
        adopt_remote(self, msg)

    def degraded_reasons(self) -> list[str]:
        """Why apiwatch is not fully itself right now; empty when all is well."""
        reasons = [
            f"{name} unavailable since {dep.down_since.isoformat(timespec='seconds')}: "
            f"{dep.reason}" + (f"; {dep.fallback}" if dep.fallback else "")
            for name, dep in self.dependencies.items()
            if not dep.ok and dep.down_since is not None
        ]
        probes = self.settings.role != "api"  # an API-role process leaves probing to workers
        if probes and self.settings.scheduler_enabled and self.last_check_at is not None:
            # Probing that silently stopped is the worst lie a monitor can tell.
            age = (utcnow() - self.last_check_at).total_seconds()
            limit = max(3 * self.settings.health_interval_s, 60.0)
            if age > limit and self.catalogue.enabled():
                reasons.append(
                    f"no probe for {age:.0f} s (health checks every "
                    f"{self.settings.health_interval_s:g} s)"
                )
        return reasons

    async def sync_keys(self) -> None:
        """Store counted key usage and refusals, then pick up keys other processes changed."""
        self.access.flush_refusals()
        await self.access.flush_usage()
        await self.access.reload()

    async def _known_items(self, items: list[str]) -> set[str]:
        async with self.sessions() as session:
            return await data_repo.known_items(session, items=items)

    def _window_reset_in(self, provider_id: str) -> float | None:
        """Seconds until the provider's shortest configured window starts afresh."""
        spec = self.catalogue.get(provider_id)
        windows = list(spec.rate_limits.windows()) if spec else []
        if not windows:
            return None
        now = time.time()
        return min(period(window, now).end for window in windows) - now

    async def _probe_and_handle(self, provider_id: str, endpoint: str, attempt: int) -> ProbeResult:
        spec = self.catalogue.providers[provider_id]
        results = await self.engine.probe(spec, endpoint, first_attempt=attempt)
        for result in results:
            self.handle(result)
        return results[-1]

    def provider(self, provider_id: str) -> ProviderSpec | None:
        return self.catalogue.get(provider_id)

    def handle(self, result: ProbeResult) -> StatusChange | None:
        """Record one result, update the provider's status and announce any change."""
        result = locations.stamp(result, self.settings.location)
        self.recorder.record(result)
        if result.certificate is not None:
            self.certificates.seen(result.certificate)
        # Listeners (alerting's queue, stream subscribers) and the tracker's window hold
        # results for a while; none needs the parsed body, which is most of a result's
        # memory (a 25-minute soak kept 37 MB of health-check bodies alive through them).
        lean = dataclasses.replace(result, payload=None, headers=NO_HEADERS, certificate=None)
        self.bus.publish(lean)
        if self.last_check_at is None or result.started_at > self.last_check_at:
            self.last_check_at = result.started_at
        if not result.final:
            return None  # an at-once retry belongs to the same check: judge its last attempt
        guard = self.engine.guard
        change = self.tracker.observe(
            lean, breaker_open=guard is not None and guard.breaker.is_open(result.provider)
        )
        if change is not None and locations.records_local(self, result.provider):
            locations.announce_change(self, change)
        return change

    async def check(
        self, *, provider_ids: list[str] | None = None, scope: Scope = "health"
    ) -> list[ProbeResult]:
        """Probe now (all enabled providers, or the named ones) and feed the results in."""
        if provider_ids is None:
            specs = self.catalogue.enabled()
        else:
            specs = [self.catalogue.providers[pid] for pid in provider_ids]
        results = await run_checks(
            self.engine, specs, scope=scope, concurrency=self.settings.probe_concurrency
        )
        for result in results:
            self.handle(result)
        # Each probe's attempts are consecutive in `results`; remember where each began.
        first: dict[tuple[str, str], ProbeResult] = {}
        for result in results:
            first.setdefault((result.provider, result.endpoint), result)
            if result.final:
                began = first.pop((result.provider, result.endpoint))
                self.retries.follow_up(result, first=began)
        return results

    async def test_keys(
        self, *, provider_id: str | None = None, env_name: str | None = None
    ) -> list[dict[str, object]]:
        """Probe each configured key (or one) against its provider's health endpoint.

        Each test is one real request, counted in the provider's budget and stored as an
        attempt; it updates the key's status but not the provider's (a bad backup key says
        nothing about the provider).
        """
        guard = self.engine.guard
        pools = guard.keys if guard is not None else {}
        out: list[dict[str, object]] = []
        for pid, pool in pools.items():
            if provider_id is not None and pid != provider_id:
                continue
            spec = self.catalogue.providers[pid]
            for key in pool.keys:
                if env_name is not None and key.env_name != env_name:
                    continue
                attempts = await self.engine.probe(spec, "health", key=key)
                for attempt in attempts:  # every request sent is stored, retries included
                    self.recorder.record(attempt)
                    if attempt.certificate is not None:
                        self.certificates.seen(attempt.certificate)
                result = attempts[-1]
                out.append(
                    {
                        "provider": pid,
                        "env_name": key.env_name,
                        "masked": key.masked,
                        "outcome": result.outcome.value,
                        "status_code": result.status_code,
                        "reason": result.reason,
                        "status": pool.status(key).value,
                    }
                )
        return out

    async def cancel_retries(self) -> None:
        await self.retries.cancel()

    # -- data collection schedules (apiwatch/collection/schedules.py) -------------------------

    async def load_schedules(self) -> None:
        await self.schedules.load()

    def schedule_collections(self) -> None:
        self.schedules.schedule_all()

    def on_slot(self, slot: Slot) -> None:
        self.schedules.on_slot(slot)

    async def update_schedule(
        self, schedule_id: int, *, interval_s: float | None, enabled: bool | None
    ) -> dict[str, object] | None:
        """Change a schedule in the database and the running scheduler (ValueError when the
        interval is faster than the provider's limits allow)."""
        return await self.schedules.update(schedule_id, interval_s=interval_s, enabled=enabled)

    def monitors(self, provider_id: str) -> bool:
        """Whether the provider is in the running catalogue and enabled (alerting drops the
        results and events of any other)."""
        spec = self.catalogue.providers.get(provider_id)
        return spec is not None and spec.enabled

    def schedule_health_checks(self) -> None:
        self._health_scheduled = True
        for spec in self.catalogue.enabled():
            self.schedule_health_check(spec)

    def schedule_health_check(self, spec: ProviderSpec) -> None:
        """Add, reschedule or remove the provider's health job to match its spec (once
        `schedule_health_checks` has run; before it, or in an API-role process, nothing)."""
        name = f"health:{spec.id}"
        if not self._health_scheduled or not spec.enabled:
            self.scheduler.remove(name)
            return
        interval = spec.health_interval_s or self.settings.health_interval_s
        job_now = self.scheduler.jobs().get(name)
        if job_now is not None:
            if job_now.interval_s != interval:
                self.scheduler.reschedule(name, interval)
            return

        async def job(pid: str = spec.id) -> None:
            if self.sharing.owns(pid) and pid in self.catalogue.providers:
                await self.check(provider_ids=[pid])

        # The first round runs within the first few seconds so a fresh start shows status
        # quickly, spread so providers are not all probed in one burst.
        self.scheduler.add(name, interval, job, first_within=min(3.0, interval))

    # -- providers changed at run time (runtime/live_catalogue.py) ---------------------------

    async def apply_provider(self, spec: ProviderSpec, source: Source = Source.API) -> None:
        """Add or change a provider in every running part, without a restart."""
        assert self.live is not None, "open_runtime sets the live catalogue"
        await self.live.apply(self, spec, source)

    async def remove_provider(self, provider_id: str) -> None:
        """Take a provider out of every running part (its stored results stay)."""
        assert self.live is not None, "open_runtime sets the live catalogue"
        await self.live.remove(self, provider_id)
