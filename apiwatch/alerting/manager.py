"""The alert manager: from events to stored alerts to delivered notifications.

Events arrive inline from the bus (`observe` only queues them: a probe never waits on
alerting). A background task turns them into alert notices with the rules, keeps each
alert's row, asks the policy whether to send (dedup, silences, acknowledge: every decision
has a named reason stored on the row), and every group window flushes the batches the
policy made into notifications: triaged (rule-based always, the LLM's report when it
answers within its timeout), routed by severity and category, and delivered; each delivery
to each channel is stored, failed or not.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, is_dataclass
from datetime import datetime
from typing import Any

import aiohttp
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from apiwatch.alerting.batches import Decision
from apiwatch.alerting.channels import build_channel
from apiwatch.alerting.channels.base import Channel
from apiwatch.alerting.config import AlertSettings, load_alert_settings
from apiwatch.alerting.delivery import Deliverer, DeliveryOutcome
from apiwatch.alerting.maintenance import MaintenanceSet, MaintenanceWindow, window_from_row
from apiwatch.alerting.maintenance_queries import MaintenanceQueries
from apiwatch.alerting.manager_queries import AlertQueries
from apiwatch.alerting.model import (
    AlertChanged,
    AlertNotice,
    AlertState,
    DecisionReason,
    Notification,
)
from apiwatch.alerting.pending_writes import PendingWrites
from apiwatch.alerting.policy import AlertPolicy
from apiwatch.alerting.rows import (
    SETTINGS_NAME,
    jsonable,
    notice_from_row,
    silence_from_row,
    with_report,
)
from apiwatch.alerting.rules import RuleEngine
from apiwatch.alerting.sending import compose_report, record_sent
from apiwatch.domain import BudgetBurn, ProbeResult, StatusChange, utcnow
from apiwatch.stopping import stop_tasks
from apiwatch.storage.repositories import alerts as alert_repo
from apiwatch.storage.repositories import maintenance as maintenance_repo

log = structlog.get_logger("apiwatch.alerting")


class AlertManager(AlertQueries, MaintenanceQueries):
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        categories: Mapping[str, str],
        event_kinds: Mapping[str, str],
        defaults: AlertSettings | None = None,
        llm_key: str | None = None,
        http: aiohttp.ClientSession | None = None,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], Any] = asyncio.sleep,
        maintenance: Sequence[MaintenanceWindow] = (),
    ) -> None:
        self._sessions = sessions
        self._categories = dict(categories)
        self._event_kinds = dict(event_kinds)
        self._defaults = defaults or load_alert_settings()
        self._llm_key = llm_key
        self._http = http
        self._clock = clock
        self._sleep = sleep
        self._queue: asyncio.Queue[object] = asyncio.Queue(maxsize=100_000)
        self._task: asyncio.Task[None] | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[Any]] = set()
        self._inbound: list[Any] = []
        # Alert rows and delivery records that wait for the database (it may be away while
        # its own alert is sent): written in order once it answers.
        self.writes = PendingWrites()
        self.dropped = 0
        self.settings = self._defaults
        self.rules = RuleEngine(self.settings, categories=self._categories)
        # The maintenance file's windows, then the database's (reloaded on every change).
        self.maintenance = MaintenanceSet(maintenance)
        self.policy = AlertPolicy(self.settings, clock=self._clock, maintenance=self.maintenance)
        self.channels: dict[str, Channel] = {}
        self._apply(self.settings)
        # Firing alerts by fingerprint -> row id, so a resolve or repeat finds its row.
        self._open: dict[str, int] = {}
        # The tracker's statuses, for triage (an offline provider escalates to a page).
        self.statuses: Callable[[], Mapping[str, str]] = dict
        # Whether a provider's results and events still count (the runtime: it is in the
        # catalogue and enabled). Those of one deleted or disabled are dropped: a result
        # still queued or relayed would fire again what `forget_provider` resolved.
        self.accepts: Callable[[str], bool] = lambda provider: True
        # Told of every alert that fires, is acknowledged or resolves (the live feed), and
        # of each notification's outcome on each channel, with its severity (the metrics).
        self.on_change: Callable[[AlertChanged], None] = lambda change: None
        self.on_delivery: Callable[[str, DeliveryOutcome], None] = lambda severity, outcome: None

    def _apply(self, settings: AlertSettings) -> None:
        """Take new settings without forgetting active alerts, timers or acknowledgements."""
        channels = {
            name: build_channel(config["kind"], name, config)
            for name, config in settings.channel_configs().items()
        }  # built first: a bad channel config fails before anything changes
        self.settings = settings
        self.rules.update_settings(settings)
        self.policy.update_settings(settings)
        self.channels = channels
        self.deliverer = Deliverer(sleep=self._sleep)
        if not channels:
            # The out-of-the-box case: alerts are kept and shown by the API, sent nowhere.
            log.info(
                "alert_channels_none",
                note="no notification channels configured (APIWATCH_ALERTS_FILE); alerts are "
                "stored and listed by /api/alerts but not sent",
            )
            return
        for name in settings.undefined_channels():
            log.warning("alert_route_to_undefined_channel", channel=name)

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        async with self._sessions() as session:
            override = await alert_repo.load_override(session, name=SETTINGS_NAME)
            firing = await alert_repo.firing_alerts(session)
            silences = await alert_repo.list_silences(session)
            windows = await maintenance_repo.list_windows(session)
        self.maintenance.replace_stored(window_from_row(row) for row in windows)
        if override:
            try:
                self._apply(self._defaults.merged(override))
            except ValueError as error:
                log.error("alert_settings_override_invalid", error=str(error))
        for row in silences:
            self.policy.silences.add(silence_from_row(row))
        for row in firing:
            self._open[row["fingerprint"]] = row["id"]
            self.rules.restore(notice_from_row(row), now=self._clock())
            self.policy.restore(
                notice_from_row(row),
                sent_at=row["sent_at"],
                acked=row["acknowledged_at"] is not None,
            )
        # Alerts restored for a provider deleted or disabled while no process was leading
        # (or in a catalogue file across a restart): nothing would resolve them.
        for provider in sorted({row["provider"] for row in firing if row["provider"]}):
            if not self.accepts(provider):
                await self.forget_provider(provider, reason="no longer monitored")
        self._task = asyncio.create_task(self._consume(), name="alerting")
        self._flusher = asyncio.create_task(self._flush_loop(), name="alerting-flush")

    async def stop(self, *, grace_s: float = 10.0) -> None:
        await self._stop_tasks()
        # Events already queued and whatever the policy holds are sent now rather than lost
        # with the process, within a grace period: a slow channel must not hold shutdown.
        with contextlib.suppress(Exception):
            while not self._queue.empty():
                for notice in self.notices_for(self._queue.get_nowait()):
                    await self.submit(notice)
            await self.tick()
            await self.flush(force=True)
        if self._pending:
            _, pending = await asyncio.wait(set(self._pending), timeout=grace_s)
            for task in pending:
                task.cancel()
            if pending:
                log.warning("alert_deliveries_cut_at_shutdown", pending=len(pending))
                # Let the cancelled sends unwind (their sessions close) while the database
                # engine still exists, not after it is disposed.
                await asyncio.wait(pending, timeout=2.0)

    async def abandon(self) -> None:
        """Stop without sending anything more: the leader lease passed to another process,
        which restores the firing alerts from the database and sends from now on."""
        await self._stop_tasks()
        self._task = self._flusher = None
        while not self._queue.empty():
            self._queue.get_nowait()

    async def _stop_tasks(self) -> None:
        # A row write the cancel interrupts runs to its end on its own (pending_writes.py).
        # Bounded: a library that swallows the cancellation must not hold shutdown (or the
        # hand-over of the lease); a task it leaves running is logged (`tasks_left_running`).
        await stop_tasks(task for task in (self._task, self._flusher) if task is not None)

    # -- input ------------------------------------------------------------------------------

    def observe(self, event: object) -> None:
        """Bus listener: queue the event, never block, never raise."""
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1

    def observe_usage(self, usage: object) -> None:
        """Inbound usage listener: collected here, judged in batches by the flush loop."""
        if len(self._inbound) < 100_000:
            self._inbound.append(usage)
        else:
            self.dropped += 1

    def notices_for(self, event: object) -> list[AlertNotice]:
        now = self._clock()
        provider = getattr(event, "provider", None)
        if isinstance(provider, str) and not self.accepts(provider):
            return []
        if isinstance(event, ProbeResult):
            return self.rules.on_result(event, now=now)
        if isinstance(event, StatusChange):
            return self.rules.on_status_change(event)
        if isinstance(event, BudgetBurn):
            return self.rules.on_budget_burn(event)
        # An event relayed from another process names its class (`type_name`).
        kind = self._event_kinds.get(getattr(event, "type_name", None) or type(event).__name__)
        if kind is None:
            return []
        data = (
            event.as_dict()
            if hasattr(event, "as_dict")
            else (asdict(event) if is_dataclass(event) and not isinstance(event, type) else {})
        )
        data = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in data.items()}
        provider = data.get("provider")
        if isinstance(provider, str) and not self.accepts(provider):
            return []
        return self.rules.on_event(kind, provider, data, now=now)

    async def _consume(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                for notice in self.notices_for(event):
                    await self.submit(notice)
            except Exception:  # one bad event must not stop alerting
                # Not `event=`: structlog takes the message by that name (a TypeError here
                # killed the consumer, and its queue then kept every result it got).
                log.exception("alert_event_failed", event_type=type(event).__name__)

    async def forget_provider(self, provider: str, *, reason: str) -> None:
        """The provider left the catalogue or was disabled: its firing alerts are resolved
        (a notification goes where each was sent) and its rule windows dropped."""
        held = [alert.notice for alert in self.policy.active() if alert.notice.provider == provider]
        for notice in self.rules.forget(provider, now=self._clock(), reason=reason, also=held):
            try:
                await self.submit(notice)
            except Exception:  # the provider's change goes on; this alert is logged
                log.exception("alert_forget_failed", provider=provider, rule=notice.rule)

    async def submit(self, notice: AlertNotice) -> None:
        """Decide on the alert (new, repeated or resolved) and store it with the decision;
        while the database is away the row waits in `writes` (the notice is sent anyway)."""
        decision = self.policy.submit(notice)
        await self.writes.run(
            f"{notice.rule} {notice.state.value}",
            lambda: self._store(notice, decision),
            now=asyncio.get_running_loop().time(),
        )

    async def _store(self, notice: AlertNotice, decision: Decision) -> None:
        async with self._sessions() as session:
            alert_id = self._open.get(notice.fingerprint)
            if notice.state is AlertState.FIRING:
                if alert_id is None:
                    alert_id = await alert_repo.insert_alert(
                        session,
                        row={
                            "rule": notice.rule,
                            "provider": notice.provider,
                            "category": notice.category,
                            "severity": notice.severity.value,
                            "message": notice.message,
                            "state": "firing",
                            "fingerprint": notice.fingerprint,
                            "group_key": decision.group_key,
                            "labels": jsonable(notice.labels),
                            "suggested_action": notice.suggested_action,
                            "fired_at": notice.fired_at,
                            "decision_reason": decision.reason.value,
                        },
                    )
                    self._open[notice.fingerprint] = alert_id
                    self._changed(alert_id, notice, "firing", notice.fired_at)
                else:
                    await alert_repo.update_alert(
                        session,
                        alert_id=alert_id,
                        values={
                            "message": notice.message,
                            "decision_reason": decision.reason.value,
                        },
                    )
            elif alert_id is not None:
                resolved_at = notice.resolved_at or self._clock()
                await alert_repo.update_alert(
                    session,
                    alert_id=alert_id,
                    values={
                        "state": "resolved",
                        "resolved_at": resolved_at,
                        "decision_reason": decision.reason.value,
                    },
                )
                # Forgotten only once the row says resolved: a failed update leaves it to retry.
                self._open.pop(notice.fingerprint, None)
                self._changed(alert_id, notice, "resolved", resolved_at)
        self.policy.bind(notice.fingerprint, alert_id)

    def _changed(self, alert_id: int, notice: AlertNotice, state: str, at: datetime) -> None:
        try:
            self.on_change(
                AlertChanged(
                    id=alert_id,
                    rule=notice.rule,
                    severity=notice.severity.value,
                    provider=notice.provider,
                    state=state,
                    message=notice.message,
                    at=at,
                )
            )
        except Exception:  # a listener's fault is not alerting's
            log.exception("alert_change_listener_failed")

    # -- output -----------------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        failures, logged_at = 0, float("-inf")
        while True:
            await asyncio.sleep(max(0.05, min(1.0, self.settings.group_window_s / 5)))
            try:
                await self.writes.drain(now=asyncio.get_running_loop().time())
                await self.tick()
                await self.flush()
            except Exception as error:
                # Once, then once a minute: a database outage fails every turn of this loop.
                failures += 1
                now = asyncio.get_running_loop().time()
                if now - logged_at >= 60:
                    logged_at = now
                    log.error("alert_flush_failed", failures=failures, error=repr(error)[:300])
            else:
                failures = 0

    async def tick(self) -> None:
        """Time-driven rules: alerts that expire (a budget window reset), inbound windows."""
        now = self._clock()
        batch, self._inbound = self._inbound, []
        notices = self.rules.on_inbound(batch, now=now) if batch else []
        notices += self.rules.tick(now=now)
        for notice in notices:
            await self.submit(notice)

    async def flush(self, *, force: bool = False) -> list[Notification]:
        """Send every batch whose group window has passed (or all, with force)."""
        notifications = self.policy.flush(self._clock(), force=force)
        for notification in notifications:
            task = asyncio.create_task(self._send(notification))
            self._pending.add(task)
            task.add_done_callback(self._sent)
        return notifications

    def _sent(self, task: asyncio.Task[list[DeliveryOutcome]]) -> None:
        """A send's end: its failure is logged here, never left to "exception never
        retrieved" (the notification stays pending in the database for a retry)."""
        self._pending.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("alert_send_failed", error=repr(error)[:300])

    def route(self, notification: Notification) -> list[Channel]:
        names = self.settings.route(
            severity=notification.severity.value,
            category=notification.category,
            provider=notification.provider,
        )
        return [self.channels[name] for name in names if name in self.channels]

    async def _send(self, notification: Notification) -> list[DeliveryOutcome]:
        report = await compose_report(
            notification,
            statuses=self.statuses(),
            llm=self.settings.llm,
            llm_key=self._llm_key,
            http=self._http,
        )
        notification = with_report(notification, report)
        channels = self.route(notification)
        outcomes = await self.deliverer.deliver(notification, channels) if channels else []
        for outcome in outcomes:
            self.on_delivery(notification.severity.value, outcome)
        now = self._clock()
        await self.writes.run(
            f"delivery {notification.group_key}",
            lambda: record_sent(
                self._sessions, notification, report, outcomes, now=now, stored_id=self._open.get
            ),
            now=asyncio.get_running_loop().time(),
        )
        log.info(
            "notification",
            group=notification.group_key,
            state=notification.state.value,
            reason=notification.reason.value,
            alerts=len(notification.alerts),
            channels=[o.channel for o in outcomes],
            delivered=sum(o.delivered for o in outcomes),
        )
        return outcomes


__all__ = ["AlertManager", "DecisionReason"]
