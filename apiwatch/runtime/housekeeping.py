"""Housekeeping of the running monitor: what it restores at start (statuses with their recent
results, breakers), what it persists (breakers, budget snapshots), retention, roll-ups and
the burn-rate judgement. Mixed into `Runtime`, which owns the parts these read."""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from apiwatch.alerting.manager import AlertManager
from apiwatch.analysis.rollups import LADDER
from apiwatch.catalogue.loader import Catalogue
from apiwatch.domain import BudgetBurn, Status, utcnow
from apiwatch.events import EventBus
from apiwatch.probe.engine import ProbeEngine
from apiwatch.runtime.breaker_saves import BreakerSaves
from apiwatch.runtime.live_status import StatusTracker
from apiwatch.runtime.retry_chains import RetryChains
from apiwatch.runtime.slo import SloService
from apiwatch.settings import Settings
from apiwatch.storage.recorder import Recorder
from apiwatch.storage.repositories import attempts as attempt_repo
from apiwatch.storage.repositories import breakers as breaker_repo
from apiwatch.storage.repositories import retention as retention_repo
from apiwatch.storage.repositories import rollups as rollup_repo
from apiwatch.storage.repositories import status_changes as status_repo
from apiwatch.storage.repositories.raw_summary import KINDS as ROLLUP_KINDS

log = structlog.get_logger("apiwatch.runtime")


class Housekeeping:
    settings: Settings
    catalogue: Catalogue
    bus: EventBus
    tracker: StatusTracker
    engine: ProbeEngine
    recorder: Recorder
    sessions: async_sessionmaker[AsyncSession]
    alerts: AlertManager | None
    retries: RetryChains
    breaker_saves: BreakerSaves
    slo: SloService
    _backfilled: set[str]

    async def restore_statuses(self, providers: list[str] | None = None) -> None:
        """Each provider's last stored status and its recent results, so a restart (or a
        worker taking a provider over) judges the next result in context."""
        wanted = list(self.catalogue.providers) if providers is None else providers
        async with self.sessions() as session:
            latest = await status_repo.latest_status(session)
            recent = await attempt_repo.recent_results(
                session, providers=wanted, per_provider=self.settings.status_window
            )
        for provider in wanted:
            row = latest.get(provider)
            if row is not None:
                self.tracker.restore(
                    provider,
                    status=Status(row["status"]),
                    reason=f"restored: {row['reason']}",
                    at=row["changed_at"],
                )
            self.tracker.seed(provider, recent.get(provider, []))

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

    async def save_breakers(self, providers: set[str] | None = None) -> None:
        """Store the breakers (all of them, or those of `providers`)."""
        guard = self.engine.guard
        if guard is None:
            return
        breaker = guard.breaker
        if providers is None:
            snapshot = breaker.snapshot()
        else:
            snapshot = {pid: breaker.state(pid).as_dict() for pid in sorted(providers)}
        async with self.sessions() as session:
            await breaker_repo.save_breakers(session, snapshot=snapshot)

    def save_breakers_soon(self, provider: str) -> None:
        """Called from a breaker transition (synchronous): persist in the background."""
        self.breaker_saves.changed(provider)

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
                        # An endpoint or key tier's window is stored as `2s@books`.
                        "window": (
                            window.window
                            if window.tier == "ip"
                            else f"{window.window}@{window.scope}"
                        )[:32],
                        "limit": window.limit,
                        "used": window.used,
                        "source": window.source,
                        "recorded_at": now,
                    },
                )
            )
        return len(usage)

    async def purge(self) -> dict[str, int]:
        """Delete raw rows past the retention period (roll-ups keep their history)."""
        before = utcnow() - timedelta(days=self.settings.retention_days)
        async with self.sessions() as session:
            deleted = await retention_repo.purge(session, before=before)
        if any(deleted.values()):
            log.info("retention_purged", before=before.isoformat(), **deleted)
        return deleted

    async def roll_up(self) -> int:
        """Refresh the hourly roll-ups of the current and previous hour (charts and SLOs read
        them); a kind never rolled up before (a new one, after an upgrade) is first rolled up
        over all the raw rows retention kept."""
        total = 0
        now = utcnow()
        async with self.sessions() as session:
            for kind in ROLLUP_KINDS:
                if kind not in self._backfilled:
                    total += await rollup_repo.backfill_if_new(
                        session, kind=kind, now=now, ladder=LADDER
                    )
                    self._backfilled.add(kind)
                total += await rollup_repo.roll_up_recent(
                    session, kind=kind, now=now, ladder=LADDER
                )
        return total

    async def judge_burn_rates(self, now: datetime | None = None) -> list[BudgetBurn]:
        """Every provider's burn rates over the windows the burn-rate alert rule uses,
        published for the rule to judge (`alerting`: dedup, silences, routing as usual)."""
        if self.alerts is None or not self.alerts.settings.rules.slo_burn.enabled:
            return []
        now = now or utcnow()
        conditions = self.alerts.rules.burn_conditions()
        rates = await self.slo.burn_rates(now=now, conditions=conditions)
        burns = []
        for spec in self.slo.specs():
            burn = BudgetBurn(
                provider=spec.id,
                target=self.slo.objective(spec).target,
                burn_rates={w.total_seconds(): r for w, r in rates.get(spec.id, {}).items()},
                at=now,
            )
            self.bus.publish(burn)
            burns.append(burn)
        return burns
