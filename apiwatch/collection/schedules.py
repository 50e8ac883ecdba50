"""Collection schedules in the running monitor: `schedule_config` seeded from the catalogue
(raised to what each provider's limits allow), one scheduler job per provider, a skipped
compliance row for each slot the scheduler could not start, and changes from the API or
adaptive polling applied to the running scheduler at once."""

from __future__ import annotations

from collections.abc import Callable

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from apiwatch.catalogue.loader import Catalogue
from apiwatch.collection.model import DEFAULT_INTERVAL_S, ScheduleState, data_endpoints
from apiwatch.collection.run import Collection
from apiwatch.scheduler.loop import IntervalScheduler, Slot, current_slot
from apiwatch.storage.repositories import schedules as schedule_repo

log = structlog.get_logger("apiwatch.schedules")


class CollectionSchedules:
    def __init__(
        self,
        *,
        catalogue: Catalogue,
        collection: Collection,
        scheduler: IntervalScheduler,
        sessions: async_sessionmaker[AsyncSession],
        enabled: bool = True,
        owns: Callable[[str], bool] = lambda provider_id: True,
    ) -> None:
        self._catalogue = catalogue
        # Whether this process collects the provider (processes sharing the work each own a
        # share); the others keep the job but neither run it nor record its slots.
        self._owns = owns
        self._collection = collection
        self._scheduler = scheduler
        self._sessions = sessions
        # APIWATCH_COLLECTION_ENABLED: without it no collection job is ever added.
        self._enabled = enabled
        collection.on_interval_change = self.apply_interval
        # Whether `schedule_all` ran: providers changed at run time get jobs only then.
        self._scheduled = False

    def defaults(self, only: str | None = None) -> list[dict[str, object]]:
        """One schedule per provider with data endpoints (or for `only` that one): its
        category's interval, raised to what the provider's rate limits allow (CoinGecko's
        10,000 a month cannot take a 1-minute schedule), enabled unless the provider is an
        `onchain` placeholder."""
        defaults = []
        for spec in self._catalogue.providers.values():
            if not data_endpoints(spec) or (only is not None and spec.id != only):
                continue
            category = spec.category.value
            interval = max(
                DEFAULT_INTERVAL_S.get(category, 600.0),
                self._collection.min_interval_within_budget(spec.id),
            )
            defaults.append(
                {
                    "provider": spec.id,
                    "category": category,
                    "interval_s": round(interval, 1),
                    "enabled": category != "onchain",
                }
            )
        return defaults

    async def load(self) -> None:
        async with self._sessions() as session:
            await schedule_repo.seed_schedules(session, defaults=self.defaults())
            rows = await schedule_repo.list_schedules(session)
        for row in rows:
            if row["provider"] not in self._catalogue.providers:
                continue
            self._collection.schedules[row["provider"]] = ScheduleState(
                schedule_id=row["id"],
                provider=row["provider"],
                category=row["category"],
                interval_s=row["interval_s"],
                enabled=row["enabled"],
                effective_interval_s=row["interval_s"],
            )

    def _runnable(self, state: ScheduleState) -> bool:
        """Whether the schedule has a job: its provider is enabled in the catalogue. (A
        disabled schedule keeps its job; each of its slots is recorded as skipped.)"""
        spec = self._catalogue.get(state.provider)
        return spec is not None and spec.enabled

    def schedule_all(self) -> None:
        self._scheduled = True
        for state in self._collection.schedules.values():
            if self._runnable(state):
                self._add_collection_job(state)

    def _add_collection_job(self, state: ScheduleState) -> None:
        async def job(pid: str = state.provider) -> None:
            if not self._owns(pid):
                return
            slot = current_slot.get()
            await self._collection.collect(pid, planned_at=slot.planned_at if slot else None)

        self._scheduler.add(
            state.job_name,
            state.effective_interval_s,
            job,
            first_within=min(5.0, state.effective_interval_s),
        )

    def on_slot(self, slot: Slot) -> None:
        """A collection slot the scheduler could not start is a skipped planned run."""
        if slot.skipped is None or not slot.job.startswith("collect:"):
            return
        state = self._collection.schedules.get(slot.job.removeprefix("collect:"))
        if state is None or not self._owns(state.provider):
            return
        self._collection.record_compliance(
            provider=state.provider,
            category=state.category,
            planned_at=slot.planned_at,
            started_at=None,
            lateness_ms=None,
            result="skipped",
            reason=slot.skipped,
        )

    def apply_interval(self, state: ScheduleState) -> None:
        if state.job_name in self._scheduler.jobs():
            self._scheduler.reschedule(state.job_name, state.effective_interval_s)
        log.info(
            "schedule_interval_changed",
            provider=state.provider,
            interval_s=state.effective_interval_s,
            configured_s=state.interval_s,
            reason=state.adaptive_reason or "configured",
        )

    async def update(
        self, schedule_id: int, *, interval_s: float | None, enabled: bool | None
    ) -> dict[str, object] | None:
        """Change a schedule in the database and in the running scheduler at once.

        Raises ValueError when the interval is faster than the provider's limits allow."""
        if interval_s is not None:
            async with self._sessions() as session:
                current = await schedule_repo.get_schedule(session, schedule_id=schedule_id)
            if current is not None and current["provider"] in self._catalogue.providers:
                floor = self._collection.min_interval_within_budget(current["provider"])
                if interval_s < floor:
                    raise ValueError(
                        f"{current['provider']}'s rate limits allow one collection every "
                        f"{floor:.0f} s at most; interval_s={interval_s:g} would be skipped "
                        "as rate_limit_budget"
                    )
        async with self._sessions() as session:
            row = await schedule_repo.update_schedule(
                session, schedule_id=schedule_id, interval_s=interval_s, enabled=enabled
            )
        if row is None:
            return None
        state = self._collection.schedules.get(row["provider"])
        if state is None:
            return row
        state.interval_s, state.enabled = row["interval_s"], row["enabled"]
        state.effective_interval_s, state.adaptive_reason = row["interval_s"], ""
        running = state.job_name in self._scheduler.jobs()
        if self._runnable(state) and self._scheduler.running and self._enabled:
            if running:
                self._scheduler.reschedule(state.job_name, state.effective_interval_s)
            else:
                self._add_collection_job(state)
        elif running:
            self._scheduler.remove(state.job_name)
        log.info(
            "schedule_updated",
            provider=state.provider,
            interval_s=state.interval_s,
            enabled=state.enabled,
        )
        return row

    async def apply_provider(self, provider_id: str) -> None:
        """The provider was added or changed at run time (its spec is in the catalogue):
        seed its schedule if it is new, raise the interval to what its limits now allow, and
        add, reschedule or remove its job."""
        spec = self._catalogue.get(provider_id)
        defaults = self.defaults(only=provider_id)
        if spec is None or not defaults:
            self.remove_provider(provider_id)
            return
        async with self._sessions() as session:
            await schedule_repo.seed_schedules(session, defaults=defaults)
            rows = await schedule_repo.list_schedules(session)
        row = next(r for r in rows if r["provider"] == provider_id)
        floor = self._collection.min_interval_within_budget(provider_id)
        state = self._collection.schedules.get(provider_id)
        if state is None:
            state = self._collection.schedules[provider_id] = ScheduleState(
                schedule_id=row["id"],
                provider=provider_id,
                category=row["category"],
                interval_s=row["interval_s"],
                enabled=row["enabled"],
                effective_interval_s=row["interval_s"],
            )
        if state.interval_s < floor:  # tighter limits: what the budget allows, no faster
            await self.update(state.schedule_id, interval_s=round(floor + 0.05, 1), enabled=None)
        if not (self._scheduled and self._enabled):
            return
        running = state.job_name in self._scheduler.jobs()
        if not self._runnable(state):
            self._scheduler.remove(state.job_name)
        elif running:
            self._scheduler.reschedule(state.job_name, state.effective_interval_s)
        else:
            self._add_collection_job(state)

    def remove_provider(self, provider_id: str) -> None:
        """The provider left the catalogue: no job, no state (its row stays for a return)."""
        state = self._collection.schedules.pop(provider_id, None)
        if state is not None:
            self._scheduler.remove(state.job_name)
