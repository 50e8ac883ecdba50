"""The composition root: `open_runtime` builds the running monitor from Settings, starts it
and stops it in order.

catalogue → probe engine (behind its guard) → status tracker → recorder (storage) and event
bus; alerting listens on the bus; the scheduler runs health checks, collections and
housekeeping. The faces (API, CLI) hold a `Runtime` and ask it things.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING

import aiohttp
import structlog
from sqlalchemy.exc import SQLAlchemyError

from apiwatch.alerting.config import load_alert_settings
from apiwatch.alerting.maintenance_file import load_maintenance_file
from apiwatch.alerting.manager import AlertManager
from apiwatch.catalogue.loader import Catalogue, load_catalogue
from apiwatch.domain import utcnow
from apiwatch.events import EventBus
from apiwatch.inbound import MemoryKeyStore
from apiwatch.probe.client import create_session
from apiwatch.runtime import locations
from apiwatch.runtime.alert_relay import AlertRelay
from apiwatch.runtime.announce import EVENT_KINDS, announcer
from apiwatch.runtime.budget_restore import restore_budgets
from apiwatch.runtime.core import Runtime
from apiwatch.runtime.live_catalogue import LiveCatalogue, load_stored
from apiwatch.runtime.live_status import StatusTracker
from apiwatch.runtime.relay import RedisRelay
from apiwatch.runtime.sharing import WorkSharing
from apiwatch.runtime.wiring import build_engine, redis_dependency, redis_from_settings
from apiwatch.scheduler.loop import IntervalScheduler
from apiwatch.settings import Settings
from apiwatch.storage.abandoned import release_abandoned_connections
from apiwatch.storage.db import create_engine, create_sessionmaker, pool_options
from apiwatch.storage.migrate import upgrade
from apiwatch.storage.recorder import Recorder
from apiwatch.storage.repositories import attempts as attempt_repo
from apiwatch.storage.repositories import data as data_repo
from apiwatch.storage.repositories import provider_specs as spec_repo
from apiwatch.storage.repositories import providers as provider_repo

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = structlog.get_logger("apiwatch.runtime")

# Scheduled runs due within 10 ms of a wake-up of the scheduler start with it (early: an
# early start is on time). Measured with aiohttp against a local upstream at 1,000 GETs a
# second: one every millisecond cost 149 µs of CPU each, ten every 10 ms 60 µs; a schedule
# measured in seconds does not notice 10 ms.
SCHEDULER_BATCH_S = 0.01


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
        maintenance=runtime.maintenance_file,
    )
    manager.statuses = runtime.tracker.statuses
    manager.accepts = runtime.monitors
    manager.on_change = runtime.feed.observe  # alert messages on the live feed
    manager.on_delivery = runtime.metrics.observe_delivery
    return manager


def _release_at_stop() -> None:
    """Close the connections of tasks the stop has cancelled inside a transaction, before
    the stop's own writes (storage/abandoned.py): one of them held SQLite's write lock and
    the stop waited for it for ever."""
    release_abandoned_connections(min_interval_s=0.0)


async def _save_breakers_at_stop(runtime: Runtime) -> None:
    """The breakers' last state, if the database takes it: one locked or away at shutdown
    must not stop the recorder's final flush (which spills what it cannot write) or make
    the stop fail; the next start then restores the breakers last saved."""
    try:
        await runtime.breaker_saves.close()
    except SQLAlchemyError as error:
        log.warning("breakers_not_saved_at_stop", error=repr(error)[:300])


def _when_leading(
    sharing: WorkSharing, job: Callable[[], Awaitable[object]]
) -> Callable[[], Awaitable[None]]:
    """A housekeeping job that only the leader runs (roll-ups, retention, snapshots)."""

    async def run() -> None:
        if sharing.leading:
            await job()

    return run


async def _share_work(
    runtime: Runtime,
    settings: Settings,
    http: aiohttp.ClientSession,
    redis_client: Redis | None,
    stack: contextlib.AsyncExitStack,
) -> None:
    """Join the cluster (with Redis) and run alerting where the leader lease is.

    Alone, this process leads: alerting starts now, as it always has. Sharing the work, an
    alert manager starts when this process takes the lease (restoring the firing alerts
    from the database, so a failover neither loses an alert nor pages twice), is abandoned
    unsent when the lease passes on, and only the leader's manager sees the bus.
    """

    async def gained(providers: set[str]) -> None:
        # Carry on judging where the previous owner stopped: no flap through `degraded`.
        await runtime.restore_statuses(sorted(providers))

    async def lead() -> None:
        runtime.alerts = build_alerts(settings, runtime, http)
        await runtime.alerts.start()
        await locations.reconcile(runtime)  # changes no leader recorded (with locations)

    async def follow() -> None:
        if runtime.alerts is not None:
            await runtime.alerts.abandon()

    sharing = WorkSharing(
        role=settings.role,
        providers=[spec.id for spec in runtime.catalogue.enabled()],
        redis=redis_client,
        worker_id=settings.worker_id,
        location=settings.location,
        heartbeat_s=settings.heartbeat_s,
        lease_s=settings.leader_lease_s,
        prefix=settings.cluster_prefix(),
        on_lead=lead,
        on_follow=follow,
        on_gain=gained,
        placement=lambda pid: spec.locations if (spec := runtime.catalogue.get(pid)) else (),
    )
    runtime.sharing = sharing
    # The API reads alerts, silences and settings through a manager even where it does not
    # lead; the leader's manager replaces it.
    runtime.alerts = build_alerts(settings, runtime, http)

    def observe(event: object) -> None:
        if sharing.leading and runtime.alerts is not None:
            runtime.alerts.observe(event)

    def observe_usage(usage: object) -> None:
        if sharing.leading and runtime.alerts is not None:
            runtime.alerts.observe_usage(usage)

    runtime.bus.add_listener(observe)
    runtime.access.listeners.append(observe_usage)
    if sharing.shared:
        stack.push_async_callback(sharing.leave)  # after alerting has stopped

    async def stop_alerts() -> None:
        if runtime.alerts is not None:
            await (runtime.alerts.stop() if sharing.leading else runtime.alerts.abandon())

    stack.push_async_callback(stop_alerts)
    if not sharing.shared:
        await runtime.alerts.start()
        return

    async def sync_alerts() -> None:
        if sharing.leading and runtime.alerts is not None:
            await runtime.alerts.sync_from_store()

    # The leader judges every process's results: the others relay theirs to it.
    relay = AlertRelay(
        redis_client,
        channel=f"{settings.cluster_prefix()}alert-inputs",
        leading=lambda: sharing.leading,
        deliver=observe,
    )
    runtime.bus.add_listener(relay.observe)
    await relay.start()
    stack.push_async_callback(relay.stop)
    await sharing.tick()  # join before the first probe, so the share is known
    runtime.scheduler.add("cluster", settings.heartbeat_s / 2, sharing.tick)
    runtime.scheduler.add("alert_sync", min(5.0, settings.heartbeat_s), sync_alerts)


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
    maintenance = (
        load_maintenance_file(settings.maintenance_file) if settings.maintenance_file else []
    )
    await upgrade(settings.database_url)
    async with contextlib.AsyncExitStack() as stack:
        # Closed in reverse: scheduler, HTTP session, recorder (final flush), then the pool.
        db_engine = create_engine(
            settings.database_url,
            **pool_options(settings.database_url, settings.db_pool_size, settings.db_max_overflow),
        )
        stack.push_async_callback(db_engine.dispose)
        sessions = create_sessionmaker(db_engine)
        # The files' providers, then those stored through the API (runtime/live_catalogue.py).
        live = LiveCatalogue(catalogue, overrides=settings.provider_overrides)
        async with sessions() as session:
            live.version = await spec_repo.catalogue_version(session)
        catalogue = live.compose(await load_stored(sessions))
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
            max_queue=settings.recorder_max_queue,
            spill_dir=settings.spill_dir,
        )
        http = create_session(
            connection_limit=settings.probe_concurrency, ca_file=settings.tls_ca_file
        )
        stack.push_async_callback(http.close)
        redis_client = redis_from_settings(settings)
        dependencies = {"database": recorder.database}
        if redis_client is not None:
            stack.push_async_callback(redis_client.aclose)
            dependencies["redis"] = redis_dependency(settings)
        bus = EventBus()
        announce = announcer(bus, recorder, on_breaker=lambda pid: runtime.save_breakers_soon(pid))
        runtime = Runtime(
            settings=settings,
            catalogue=catalogue,
            bus=bus,
            tracker=StatusTracker(
                catalogue.providers,
                window=settings.status_window,
                quorum=settings.location_quorum,
            ),
            engine=build_engine(
                settings,
                catalogue,
                http,
                redis_client=redis_client,
                redis_health=dependencies.get("redis"),
                emit=announce,
            ),
            recorder=recorder,
            db_engine=db_engine,
            sessions=sessions,
            scheduler=IntervalScheduler(
                concurrency=settings.probe_concurrency,
                target_lag_s=settings.probe_lag_target_ms / 1000,
                batch_s=SCHEDULER_BATCH_S,
                on_slot=lambda slot: runtime.on_slot(slot),
            ),
            announce=announce,
            key_store=key_store if key_store is not None else MemoryKeyStore(),
            dependencies=dependencies,
            live=live,
            maintenance_file=maintenance,
        )
        runtime.tracker.expected = lambda pid: locations.expected(runtime, pid)
        for dependency in dependencies.values():
            dependency.listeners.append(announce)
        # What an earlier run spilled (its database locked or away at shutdown) goes in
        # before statuses, breakers and schedules are read back from the database.
        await recorder.replay_spilled()
        await runtime.restore_statuses()
        async with sessions() as session:
            runtime.last_check_at = await attempt_repo.last_check_time(session)
        await runtime.restore_breakers()
        await runtime.certificates.load()
        if runtime.engine.guard is not None:
            await restore_budgets(runtime.engine.guard.gate, catalogue, sessions)
        await runtime.load_schedules()
        async with sessions() as session:
            runtime.collection.restore(
                await data_repo.latest_points(session, since=utcnow() - timedelta(days=2))
            )
        await recorder.start()
        stack.push_async_callback(recorder.stop)
        stack.push_async_callback(runtime.access.flush_usage)
        stack.callback(lambda: runtime.access.flush_refusals(everything=True))
        await runtime.access.reload()
        admin_key = settings.admin_key.get_secret_value() if settings.admin_key else None
        first_key = await runtime.access.ensure_bootstrap_key(configured=admin_key)
        if first_key is not None and on_first_key is not None:
            on_first_key(first_key)
        # Runs after alerting and the feed have stopped, before usage and the final flush.
        stack.callback(_release_at_stop)
        bus.add_listener(runtime.feed.observe)
        bus.add_listener(runtime.metrics.observe)
        runtime.access.listeners.append(runtime.metrics.observe_usage)
        await runtime.feed.start()
        stack.push_async_callback(runtime.feed.stop)
        if redis_client is not None:
            relay = RedisRelay(redis_client, runtime.feed, channel=settings.live_redis_channel)
            runtime.feed.forward = relay.publish
            # An API process adopts the workers' statuses; every process judges the results
            # of other locations (`feed_status.adopt_remote`).
            relay.on_remote = runtime.adopt_remote
            await relay.start()
            stack.push_async_callback(relay.stop)
        await _share_work(runtime, settings, http, redis_client, stack)
        # Registered after the recorder: these stop first, so no probe outlives the final flush.
        stack.push_async_callback(runtime.certificates.drain)
        stack.push_async_callback(_save_breakers_at_stop, runtime)
        stack.callback(_release_at_stop)  # after the cancellations below
        stack.push_async_callback(runtime.cancel_retries)
        stack.push_async_callback(runtime.scheduler.stop)
        run_scheduler = settings.scheduler_enabled if start_scheduler is None else start_scheduler
        if run_scheduler:
            probes = settings.role != "api"
            if probes:
                runtime.schedule_health_checks()
            lead = runtime.sharing
            runtime.scheduler.add(
                "budget_snapshot",
                settings.budget_snapshot_interval_s,
                _when_leading(lead, runtime.snapshot_budgets),
            )
            runtime.scheduler.add(
                "rollups", settings.rollup_interval_s, _when_leading(lead, runtime.roll_up)
            )
            runtime.scheduler.add(
                "slo_burn",
                settings.slo_burn_interval_s,
                _when_leading(lead, runtime.judge_burn_rates),
            )
            runtime.scheduler.add("api_keys", settings.api_key_sync_s, runtime.sync_keys)
            # Providers other processes changed through the API (one cheap query when none).
            runtime.scheduler.add(
                "provider_sync", settings.provider_sync_s, lambda: live.sync(runtime)
            )
            runtime.scheduler.add(
                "retention", 3600.0, _when_leading(lead, runtime.purge), first_within=60.0
            )
            if settings.collection_enabled and probes:
                runtime.schedule_collections()
            runtime.scheduler.start()
        # What start-up built lives as long as the process: moved out of the collector's
        # sight, so each full collection scans what probing allocates, not all of it (at
        # 1,000 providers a full collection walked ~330,000 objects, ~0.2 s each). Garbage
        # is collected first, so none of it is frozen with them.
        gc.collect()
        gc.freeze()
        log.info(
            "started",
            providers=len(catalogue.providers),
            enabled=len(catalogue.enabled()),
            upstream_override=settings.upstream_override,
        )
        yield runtime
