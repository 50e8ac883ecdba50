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
from collections.abc import Callable, Mapping
from dataclasses import asdict, is_dataclass, replace
from datetime import datetime
from typing import Any

import aiohttp
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from apiwatch.alerting.channels import build_channel
from apiwatch.alerting.channels.base import Channel
from apiwatch.alerting.config import AlertSettings, load_alert_settings
from apiwatch.alerting.delivery import Deliverer, DeliveryOutcome
from apiwatch.alerting.llm import llm_report
from apiwatch.alerting.model import AlertNotice, AlertState, DecisionReason, Notification
from apiwatch.alerting.policy import AlertPolicy
from apiwatch.alerting.rules import RuleEngine
from apiwatch.alerting.silences import Silence
from apiwatch.alerting.triage import triage
from apiwatch.domain import ProbeResult, Severity, StatusChange, utcnow
from apiwatch.storage.repositories import alerts as alert_repo

log = structlog.get_logger("apiwatch.alerting")

SETTINGS_NAME = "alerts"


class AlertManager:
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
        self.dropped = 0
        self.settings = self._defaults
        self.rules = RuleEngine(self.settings, categories=self._categories)
        self.policy = AlertPolicy(self.settings, clock=self._clock)
        self.channels: dict[str, Channel] = {}
        self._apply(self.settings)
        # Firing alerts by fingerprint -> row id, so a resolve or repeat finds its row.
        self._open: dict[str, int] = {}
        # The tracker's statuses, for triage (an offline provider escalates to a page).
        self.statuses: Callable[[], Mapping[str, str]] = dict

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
        if override:
            try:
                self._apply(self._defaults.merged(override))
            except ValueError as error:
                log.error("alert_settings_override_invalid", error=str(error))
        for row in silences:
            self.policy.silences.add(_silence(row))
        for row in firing:
            self._open[row["fingerprint"]] = row["id"]
            self.rules.restore(_notice(row), now=self._clock())
            self.policy.restore(
                _notice(row), sent_at=row["sent_at"], acked=row["acknowledged_at"] is not None
            )
        self._task = asyncio.create_task(self._consume(), name="alerting")
        self._flusher = asyncio.create_task(self._flush_loop(), name="alerting-flush")

    async def stop(self, *, grace_s: float = 10.0) -> None:
        for task in (self._task, self._flusher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
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
        if isinstance(event, ProbeResult):
            return self.rules.on_result(event, now=now)
        if isinstance(event, StatusChange):
            return self.rules.on_status_change(event)
        kind = self._event_kinds.get(type(event).__name__)
        if kind is None:
            return []
        data = (
            event.as_dict()
            if hasattr(event, "as_dict")
            else (asdict(event) if is_dataclass(event) and not isinstance(event, type) else {})
        )
        data = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in data.items()}
        return self.rules.on_event(kind, data.get("provider"), data, now=now)

    async def _consume(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                for notice in self.notices_for(event):
                    await self.submit(notice)
            except Exception:  # one bad event must not stop alerting
                log.exception("alert_event_failed", event=type(event).__name__)

    async def submit(self, notice: AlertNotice) -> int | None:
        """Store the alert (new, repeated or resolved) and record the policy's decision."""
        decision = self.policy.submit(notice)
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
                            "labels": _jsonable(notice.labels),
                            "suggested_action": notice.suggested_action,
                            "fired_at": notice.fired_at,
                            "decision_reason": decision.reason.value,
                        },
                    )
                    self._open[notice.fingerprint] = alert_id
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
                await alert_repo.update_alert(
                    session,
                    alert_id=alert_id,
                    values={
                        "state": "resolved",
                        "resolved_at": notice.resolved_at or self._clock(),
                        "decision_reason": decision.reason.value,
                    },
                )
                # Forgotten only once the row says resolved: a failed update leaves it to retry.
                self._open.pop(notice.fingerprint, None)
        self.policy.bind(notice.fingerprint, alert_id)
        return alert_id

    # -- output -----------------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(max(0.05, min(1.0, self.settings.group_window_s / 5)))
            try:
                await self.tick()
                await self.flush()
            except Exception:
                log.exception("alert_flush_failed")

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
            task.add_done_callback(self._pending.discard)
        return notifications

    def route(self, notification: Notification) -> list[Channel]:
        names = self.settings.route(
            severity=notification.severity.value,
            category=notification.category,
            provider=notification.provider,
        )
        return [self.channels[name] for name in names if name in self.channels]

    async def _send(self, notification: Notification) -> list[DeliveryOutcome]:
        verdict = triage(notification.alerts, statuses=self.statuses())
        report = verdict.report
        llm = self.settings.llm
        if llm.url and self._llm_key and self._http is not None:
            # Never delays sending beyond its timeout; the rule-based report stands otherwise.
            answer = await llm_report(
                notification.alerts,
                url=llm.url,
                key=self._llm_key,
                model=llm.model,
                timeout_s=llm.timeout_s,
                session=self._http,
            )
            if answer:
                report = f"{answer}\n\n(rule-based triage) {verdict.report}"
        notification = _with_report(notification, report)
        channels = self.route(notification)
        outcomes = await self.deliverer.deliver(notification, channels) if channels else []
        now = self._clock()
        alert_ids = [a.alert_id for a in notification.alerts if a.alert_id is not None]
        async with self._sessions() as session:
            for alert_id in alert_ids:
                row = await alert_repo.get_alert(session, alert_id=alert_id)
                if row is None:
                    continue
                values: dict[str, Any] = {"report": report}
                if notification.state is AlertState.FIRING:
                    values["notifications"] = row["notifications"] + 1
                    values["sent_at"] = row["sent_at"] or now
                    values["decision_reason"] = notification.reason.value
                await alert_repo.update_alert(session, alert_id=alert_id, values=values)
            for outcome in outcomes:
                await alert_repo.insert_delivery(
                    session,
                    row={
                        "group_key": notification.group_key,
                        "alert_ids": alert_ids,
                        "channel": outcome.channel,
                        "kind": outcome.kind,
                        "state": notification.state.value,
                        "reason": notification.reason.value,
                        "delivered": outcome.delivered,
                        "attempts": outcome.attempts,
                        "error": outcome.error,
                        "retryable": outcome.retryable,
                        "at": outcome.at,
                    },
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

    # -- the API's questions ----------------------------------------------------------------

    async def list_alerts(self, **filters: Any) -> list[dict[str, Any]]:
        async with self._sessions() as session:
            return await alert_repo.list_alerts(session, **filters)

    async def acknowledge(self, alert_id: int, *, by: str) -> dict[str, Any] | None:
        now = self._clock()
        async with self._sessions() as session:
            row = await alert_repo.get_alert(session, alert_id=alert_id)
            if row is None:
                return None
            await alert_repo.update_alert(
                session,
                alert_id=alert_id,
                values={"acknowledged_at": now, "acknowledged_by": by},
            )
            self.policy.acknowledge(row["fingerprint"], by=by, now=now)
            log.info("alert_acknowledged", alert_id=alert_id, by=by)
            return await alert_repo.get_alert(session, alert_id=alert_id)

    async def report(self, alert_id: int) -> dict[str, Any] | None:
        async with self._sessions() as session:
            row = await alert_repo.get_alert(session, alert_id=alert_id)
            if row is None:
                return None
            group = (
                await alert_repo.list_alerts(session, group_key=row["group_key"], limit=50)
                if row["group_key"]
                else [row]
            )
            deliveries = (
                await alert_repo.list_deliveries(session, group_key=row["group_key"], limit=20)
                if row["group_key"]
                else []
            )
        verdict = triage([_notice(r) for r in group])
        return {
            "alert": row,
            "group": [r["id"] for r in group],
            "report": row["report"] or verdict.report,
            "triage": {
                "escalation": verdict.escalation,
                "needs_human": verdict.needs_human,
                "suggested_action": verdict.suggested_action,
            },
            "deliveries": deliveries,
        }

    def settings_view(self) -> dict[str, Any]:
        return self.settings.public_view()

    async def update_settings(self, patch: dict[str, Any]) -> dict[str, Any]:
        """Validate the patch over the current settings, apply it and keep it."""
        merged = self.settings.merged(patch)  # raises ValueError naming the field
        async with self._sessions() as session:
            stored = await alert_repo.load_override(session, name=SETTINGS_NAME) or {}
            await alert_repo.save_override(
                session, name=SETTINGS_NAME, value=_deep_merge(stored, patch)
            )
        self._apply(merged)
        log.info("alert_settings_updated", fields=sorted(patch))
        return self.settings_view()

    async def create_silence(self, **row: Any) -> dict[str, Any]:
        async with self._sessions() as session:
            stored = await alert_repo.create_silence(session, row=row)
        self.policy.silences.add(_silence(stored))
        log.info("silence_created", silence_id=stored["id"], matchers=stored["matchers"])
        return stored

    async def list_silences(self) -> list[dict[str, Any]]:
        now = self._clock()
        async with self._sessions() as session:
            rows = await alert_repo.list_silences(session)
        for row in rows:
            row["active"] = row["starts_at"] <= now < row["ends_at"]
        return sorted(rows, key=lambda r: (not r["active"], -r["id"]))

    async def delete_silence(self, silence_id: int) -> bool:
        async with self._sessions() as session:
            deleted = await alert_repo.delete_silence(session, silence_id=silence_id)
        if deleted:
            self.policy.silences.remove(silence_id)
        return deleted


def _silence(row: Mapping[str, Any]) -> Silence:
    return Silence(
        id=row["id"],
        matchers=dict(row["matchers"]),
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        created_by=row["created_by"],
        comment=row.get("comment", ""),
    )


def _notice(row: Mapping[str, Any]) -> AlertNotice:
    return AlertNotice(
        rule=row["rule"],
        severity=Severity(row["severity"]),
        state=AlertState(row["state"])
        if row["state"] in ("firing", "resolved")
        else AlertState.FIRING,
        message=row["message"],
        fired_at=row["fired_at"],
        fingerprint=row["fingerprint"],
        provider=row["provider"],
        category=row["category"],
        alert_id=row["id"],
        resolved_at=row["resolved_at"],
        suggested_action=row["suggested_action"],
        labels=dict(row["labels"] or {}),
    )


def _with_report(notification: Notification, report: str) -> Notification:
    return replace(notification, report=report)


def _jsonable(labels: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: v.isoformat()
        if isinstance(v, datetime)
        else v
        if isinstance(v, str | int | float | bool | type(None) | list | dict)
        else str(v)
        for k, v in labels.items()
    }


def _deep_merge(base: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in patch.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


__all__ = ["AlertManager", "DecisionReason"]
