"""The composition root: builds the running monitor from Settings and wires its parts.

catalogue → probe engine → tracker (status) → recorder (storage) and event bus; the
scheduler runs the health checks. The faces (API, CLI) hold a `Runtime` and ask it things.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

import aiohttp
import structlog
from redis.asyncio import BlockingConnectionPool, Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from apiwatch.access import AccessControl
from apiwatch.alerting.config import load_alert_settings
from apiwatch.alerting.manager import AlertManager
from apiwatch.analysis.freshness import DEFAULT_TTL_S
from apiwatch.analysis.rollups import LADDER
from apiwatch.budget.gate import BudgetGate
from apiwatch.budget.keys import KeyPool
from apiwatch.budget.shared import RedisState
from apiwatch.budget.stores import MemoryBudgetStore, RedisBudgetStore
from apiwatch.budget.windows import period
from apiwatch.catalogue.loader import Catalogue, load_catalogue
from apiwatch.catalogue.schema import ProviderSpec
from apiwatch.collection import Collection, CollectionConfig
from apiwatch.domain import ProbeResult, Status, StatusChange, utcnow
from apiwatch.events import EventBus
from apiwatch.inbound import MemoryKeyStore
from apiwatch.probe.breaker import CircuitBreaker
from apiwatch.probe.client import create_session
from apiwatch.probe.engine import ProbeEngine
from apiwatch.probe.guard import ProbeGuard
from apiwatch.probe.retry import RetryPolicy
from apiwatch.retries import RetryChains
from apiwatch.scheduler.loop import IntervalScheduler, Slot
from apiwatch.schedules import CollectionSchedules
from apiwatch.settings import Settings
from apiwatch.storage.db import create_engine, create_sessionmaker
from apiwatch.storage.migrate import upgrade
from apiwatch.storage.recorder import Recorder
from apiwatch.storage.repositories import breakers as breaker_repo
from apiwatch.storage.repositories import data as data_repo
from apiwatch.storage.repositories import providers as provider_repo
from apiwatch.storage.repositories import retention as retention_repo
from apiwatch.storage.repositories import rollups as rollup_repo
from apiwatch.storage.repositories import status_changes as status_repo
from apiwatch.tracker import StatusTracker

log = structlog.get_logger("apiwatch.runtime")

Scope = Literal["health", "all"]


def key_pools(catalogue: Catalogue, settings: Settings) -> dict[str, KeyPool]:
    names = [name for spec in catalogue.providers.values() for name in spec.auth.keys]
    values = settings.secrets(names)
    return {
        spec.id: KeyPool.from_env(spec.id, spec.auth.keys, values)
        for spec in catalogue.providers.values()
    }


def build_engine(
    settings: Settings,
    catalogue: Catalogue,
    http: aiohttp.ClientSession,
    *,
    redis_client: Redis | None = None,
    emit: Callable[[object], None] = lambda event: None,
) -> ProbeEngine:
    """The probe engine behind its guard: breaker, key pools and budget (Redis when given)."""
    keys = key_pools(catalogue, settings)
    limits = {
        spec.id: windows
        for spec in catalogue.providers.values()
        if (windows := spec.rate_limits.windows())
    }
    store = RedisBudgetStore(redis_client) if redis_client is not None else MemoryBudgetStore()
    guard = ProbeGuard(
        gate=BudgetGate(limits, store, warn_at=settings.budget_warn_at),
        breaker=CircuitBreaker(
            failure_threshold=settings.breaker_failure_threshold,
            cooldown_s=settings.breaker_cooldown_s,
            on_transition=emit,
        ),
        keys=keys,
        emit=emit,
        shared=RedisState(redis_client) if redis_client is not None else None,
    )
    return ProbeEngine(
        session=http,
        keys=keys,
        upstream_override=settings.upstream_override,
        max_body_bytes=settings.max_body_bytes,
        # Rate-limited retries stop after 5 attempts: past that the next scheduled check is
        # the better probe, and a daily quota would otherwise be polled all day.
        retry=RetryPolicy(rate_limited_max_attempts=5),
        guard=guard,
    )


def redis_from_settings(settings: Settings) -> Redis | None:
    if not settings.redis_url:
        return None
    # A blocking pool waits for a free connection instead of failing past its size.
    pool = BlockingConnectionPool.from_url(settings.redis_url, max_connections=64, timeout=10)
    return Redis(connection_pool=pool)


def endpoint_names(spec: ProviderSpec, scope: Scope) -> list[str]:
    return ["health"] if scope == "health" else list(spec.all_endpoints())


async def run_checks(
    engine: ProbeEngine,
    providers: Iterable[ProviderSpec],
    *,
    scope: Scope = "health",
    concurrency: int = 50,
) -> list[ProbeResult]:
    """Probe every endpoint in scope of `providers` concurrently; every attempt, in order."""
    limit = asyncio.Semaphore(concurrency)

    async def one(spec: ProviderSpec, name: str) -> list[ProbeResult]:
        async with limit:
            return await engine.probe(spec, name)

    batches = await asyncio.gather(
        *(one(spec, name) for spec in providers for name in endpoint_names(spec, scope))
    )
    return [result for batch in batches for result in batch]


# Guard events by type, as stored in `events.kind` and shown by GET /api/events.
EVENT_KINDS = {
    "BudgetWarning": "rate_limit_warning",
    "KeyExpired": "key_expired",
    "BreakerTransition": "breaker_transition",
    "DataStale": "data_stale",
    "DataDivergent": "data_divergent",
    "IntervalChanged": "schedule_interval_changed",
}


def announcer(
    bus: EventBus, recorder: Recorder, *, on_breaker: Callable[[], None] = lambda: None
) -> Callable[[object], None]:
    """Publish a guard event (budget warning, expired key, breaker transition), store it as an
    `events` row and log it; a breaker transition also triggers `on_breaker` (persistence)."""

    def announce(event: object) -> None:
        bus.publish(event)
        as_dict = getattr(event, "as_dict", None)
        fields = as_dict() if callable(as_dict) else dataclasses.asdict(event)  # type: ignore[call-overload]
        kind = EVENT_KINDS.get(type(event).__name__, type(event).__name__)
        data = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in fields.items()}
        recorder.record(
            (
                "events",
                {"kind": kind, "provider": fields.get("provider"), "data": data, "at": utcnow()},
            )
        )
        log.info(kind, **{k: v for k, v in data.items() if k != "event"})
        if kind == "breaker_transition":
            on_breaker()

    return announce


@dataclass
class Runtime:
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

    retries: RetryChains = field(init=False)
    collection: Collection = field(init=False)
    schedules: CollectionSchedules = field(init=False)
    access: AccessControl = field(init=False)

    def __post_init__(self) -> None:
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
            record=self.recorder.record,
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
        )
        self.access = AccessControl(
            sessions=self.sessions, store=self.key_store, record=self.recorder.record
        )

    async def sync_keys(self) -> None:
        """Store counted key usage, then pick up keys other processes changed."""
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
        self.recorder.record(result)
        self.bus.publish(result)
        if not result.final:
            return None  # an at-once retry belongs to the same check: judge its last attempt
        # The tracker keeps a window of results; it must not keep their payloads alive.
        guard = self.engine.guard
        change = self.tracker.observe(
            dataclasses.replace(result, payload=None, headers={}),
            breaker_open=guard is not None and guard.breaker.is_open(result.provider),
        )
        if change is not None:
            self.recorder.record(change)
            self.bus.publish(change)
            log.info(
                "status_change",
                provider=change.provider,
                old=change.old.value,
                new=change.new.value,
                reason=change.reason,
            )
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

    async def restore_breakers(self) -> None:
        """Reload breaker state, so a restart does not hammer a provider that was failing."""
        guard = self.engine.guard
        if guard is None:
            return
        async with self.sessions() as session:
            saved = await breaker_repo.load_breakers(session)
        skipped = guard.breaker.restore(saved)
        if skipped:
            log.warning("breaker_state_unreadable", providers=skipped)

    async def save_breakers(self) -> None:
        guard = self.engine.guard
        if guard is None:
            return
        async with self.sessions() as session:
            await breaker_repo.save_breakers(session, snapshot=guard.breaker.snapshot())

    def save_breakers_soon(self) -> None:
        """Called from a breaker transition (synchronous): persist in the background."""
        self.retries.spawn(self.save_breakers)

    async def snapshot_budgets(self) -> int:
        """Store every window's usage in `rate_limit_usage` (for charts); returns rows queued."""
        guard = self.engine.guard
        if guard is None:
            return 0
        now = utcnow()
        usage = await guard.gate.snapshot()
        for window in usage:
            self.recorder.record(
                (
                    "rate_limit_usage",
                    {
                        "provider": window.provider,
                        "window": window.window,
                        "limit": window.limit,
                        "used": window.used,
                        "source": window.source,
                        "recorded_at": now,
                    },
                )
            )
        return len(usage)

    # -- data collection schedules (apiwatch/schedules.py) ----------------------------------------

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

    async def purge(self) -> dict[str, int]:
        """Delete raw rows past the retention period (roll-ups keep their history)."""
        before = utcnow() - timedelta(days=self.settings.retention_days)
        async with self.sessions() as session:
            deleted = await retention_repo.purge(session, before=before)
        if any(deleted.values()):
            log.info("retention_purged", before=before.isoformat(), **deleted)
        return deleted

    async def roll_up(self) -> int:
        """Refresh the hourly roll-ups of the current and previous hour (charts read them)."""
        total = 0
        async with self.sessions() as session:
            for kind in ("probe", "api"):
                total += await rollup_repo.roll_up_recent(
                    session, kind=kind, now=utcnow(), ladder=LADDER
                )
        return total

    def schedule_health_checks(self) -> None:
        for spec in self.catalogue.enabled():

            async def job(pid: str = spec.id) -> None:
                await self.check(provider_ids=[pid])

            # The first round runs within the first few seconds so a fresh start shows status
            # quickly, spread so providers are not all probed in one burst.
            self.scheduler.add(
                f"health:{spec.id}",
                self.settings.health_interval_s,
                job,
                first_within=min(3.0, self.settings.health_interval_s),
            )


async def _restore_statuses(runtime: Runtime) -> None:
    async with runtime.sessions() as session:
        latest = await status_repo.latest_status(session)
    for provider, row in latest.items():
        if provider in runtime.catalogue.providers:
            runtime.tracker.restore(
                provider,
                status=Status(row["status"]),
                reason=f"restored: {row['reason']}",
                at=row["changed_at"],
            )


def build_alerts(settings: Settings, runtime: Runtime, http: aiohttp.ClientSession) -> AlertManager:
    """Alerting over the runtime's events: YAML defaults, the user's file, the LLM settings
    from the environment (the key never goes into a settings file)."""
    llm = {
        name: value
        for name, value in (("url", settings.llm_url), ("model", settings.llm_model))
        if value
    }
    defaults = load_alert_settings(
        user_path=settings.alerts_file, patch={"llm": llm} if llm else None
    )
    manager = AlertManager(
        sessions=runtime.sessions,
        categories={spec.id: spec.category.value for spec in runtime.catalogue.providers.values()},
        event_kinds=EVENT_KINDS,
        defaults=defaults,
        llm_key=settings.llm_key.get_secret_value() if settings.llm_key else None,
        http=http,
    )
    manager.statuses = lambda: {
        pid: state.status.value for pid, state in runtime.tracker.states().items()
    }
    return manager


@contextlib.asynccontextmanager
async def open_runtime(
    settings: Settings,
    *,
    catalogue: Catalogue | None = None,
    start_scheduler: bool | None = None,
    key_store: MemoryKeyStore | None = None,
    on_first_key: Callable[[str], None] | None = None,
) -> AsyncIterator[Runtime]:
    """Build, start and (on exit, or on a failed start) stop everything; recorder flushed last.

    `key_store` is the store the API's middleware reads (filled here from the database);
    `on_first_key` receives the admin key created on a first start with no keys, to print
    it once (it is never logged)."""
    catalogue = catalogue or load_catalogue(user_dir=settings.catalogue_dir)
    await upgrade(settings.database_url)
    async with contextlib.AsyncExitStack() as stack:
        # Closed in reverse: scheduler, HTTP session, recorder (final flush), then the pool.
        db_engine = create_engine(settings.database_url)
        stack.push_async_callback(db_engine.dispose)
        sessions = create_sessionmaker(db_engine)
        async with sessions() as session:
            await provider_repo.sync_providers(
                session,
                providers=[
                    {
                        "id": spec.id,
                        "name": spec.name,
                        "category": spec.category.value,
                        "base_url": spec.base_url,
                        "enabled": spec.enabled,
                    }
                    for spec in catalogue.providers.values()
                ],
            )
        recorder = Recorder(
            sessions,
            batch_size=settings.recorder_batch_size,
            flush_interval_s=settings.recorder_flush_ms / 1000,
        )
        http = create_session(connection_limit=settings.probe_concurrency)
        stack.push_async_callback(http.close)
        redis_client = redis_from_settings(settings)
        if redis_client is not None:
            stack.push_async_callback(redis_client.aclose)
        bus = EventBus()
        announce = announcer(bus, recorder, on_breaker=lambda: runtime.save_breakers_soon())
        runtime = Runtime(
            settings=settings,
            catalogue=catalogue,
            bus=bus,
            tracker=StatusTracker(catalogue.providers, window=settings.status_window),
            engine=build_engine(
                settings,
                catalogue,
                http,
                redis_client=redis_client,
                emit=announce,
            ),
            recorder=recorder,
            db_engine=db_engine,
            sessions=sessions,
            scheduler=IntervalScheduler(
                concurrency=settings.probe_concurrency, on_slot=lambda slot: runtime.on_slot(slot)
            ),
            announce=announce,
            key_store=key_store if key_store is not None else MemoryKeyStore(),
        )
        await _restore_statuses(runtime)
        await runtime.restore_breakers()
        await runtime.load_schedules()
        async with sessions() as session:
            runtime.collection.restore(
                await data_repo.latest_points(session, since=utcnow() - timedelta(days=2))
            )
        await recorder.start()
        stack.push_async_callback(recorder.stop)
        stack.push_async_callback(runtime.access.flush_usage)
        await runtime.access.reload()
        admin_key = settings.admin_key.get_secret_value() if settings.admin_key else None
        first_key = await runtime.access.ensure_bootstrap_key(configured=admin_key)
        if first_key is not None and on_first_key is not None:
            on_first_key(first_key)
        runtime.alerts = build_alerts(settings, runtime, http)
        bus.add_listener(runtime.alerts.observe)
        runtime.access.listeners.append(runtime.alerts.observe_usage)
        await runtime.alerts.start()
        stack.push_async_callback(runtime.alerts.stop)
        # Registered after the recorder: these stop first, so no probe outlives the final flush.
        stack.push_async_callback(runtime.save_breakers)
        stack.push_async_callback(runtime.cancel_retries)
        stack.push_async_callback(runtime.scheduler.stop)
        run_scheduler = settings.scheduler_enabled if start_scheduler is None else start_scheduler
        if run_scheduler:
            runtime.schedule_health_checks()
            runtime.scheduler.add(
                "budget_snapshot", settings.budget_snapshot_interval_s, runtime.snapshot_budgets
            )
            runtime.scheduler.add("rollups", settings.rollup_interval_s, runtime.roll_up)
            runtime.scheduler.add("api_keys", settings.api_key_sync_s, runtime.sync_keys)
            runtime.scheduler.add("retention", 3600.0, runtime.purge, first_within=60.0)
            if settings.collection_enabled:
                runtime.schedule_collections()
            runtime.scheduler.start()
        log.info(
            "started",
            providers=len(catalogue.providers),
            enabled=len(catalogue.enabled()),
            upstream_override=settings.upstream_override,
        )
        yield runtime
