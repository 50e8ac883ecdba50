"""The alert manager's answers to the API: alerts, acknowledgements, reports, settings and
silences. Mixed into `AlertManager`, which owns the sessions, the policy and the rules."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import aiohttp
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from apiwatch.alerting.config import AlertSettings
from apiwatch.alerting.llm import llm_report
from apiwatch.alerting.model import AlertChanged
from apiwatch.alerting.policy import AlertPolicy
from apiwatch.alerting.rows import SETTINGS_NAME, deep_merge, notice_from_row, silence_from_row
from apiwatch.alerting.triage import triage
from apiwatch.storage.repositories import alerts as alert_repo

log = structlog.get_logger("apiwatch.alerting")


class AlertQueries:
    _sessions: async_sessionmaker[AsyncSession]
    _clock: Callable[[], datetime]
    policy: AlertPolicy
    settings: AlertSettings
    _apply: Callable[[AlertSettings], None]
    _llm_key: str | None
    _http: aiohttp.ClientSession | None
    on_change: Callable[[AlertChanged], None]
    reload_maintenance: Callable[[], Awaitable[int]]

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
            self.on_change(
                AlertChanged(
                    id=alert_id,
                    rule=row["rule"],
                    severity=row["severity"],
                    provider=row["provider"],
                    state="acknowledged",
                    message=row["message"],
                    at=now,
                )
            )
            return await alert_repo.get_alert(session, alert_id=alert_id)

    @staticmethod
    async def _with_group(
        session: AsyncSession, alert_id: int
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """An alert and the alerts of its group (itself alone when it has none)."""
        row = await alert_repo.get_alert(session, alert_id=alert_id)
        if row is None or not row["group_key"]:
            return row, [row] if row else []
        return row, await alert_repo.list_alerts(session, group_key=row["group_key"], limit=50)

    async def report(self, alert_id: int) -> dict[str, Any] | None:
        async with self._sessions() as session:
            row, group = await self._with_group(session, alert_id)
            if row is None:
                return None
            deliveries = (
                await alert_repo.list_deliveries(session, group_key=row["group_key"], limit=20)
                if row["group_key"]
                else []
            )
        verdict = triage([notice_from_row(r) for r in group])
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
            "llm_configured": self.llm_configured,
        }

    @property
    def llm_configured(self) -> bool:
        return bool(self.settings.llm.url and self._llm_key and self._http is not None)

    async def explain(self, alert_id: int) -> dict[str, Any] | None:
        """Ask the configured LLM for an incident report of the alert's group now (the
        dashboard's "explain"); stored on every alert of the group. None for an unknown
        alert; `LookupError` when no LLM is configured, `RuntimeError` when it gave none."""
        if not self.llm_configured:
            raise LookupError("no LLM is configured (APIWATCH_LLM_URL, _KEY and _MODEL)")
        async with self._sessions() as session:
            row, group = await self._with_group(session, alert_id)
        if row is None:
            return None
        llm = self.settings.llm
        assert self._http is not None
        answer = await llm_report(
            [notice_from_row(r) for r in group],
            url=llm.url or "",
            key=self._llm_key,
            model=llm.model,
            timeout_s=llm.timeout_s,
            session=self._http,
        )
        if not answer:
            raise RuntimeError("the LLM gave no usable answer (timeout, error or garbage)")
        async with self._sessions() as session:
            for member in group:
                await alert_repo.update_alert(
                    session, alert_id=member["id"], values={"report": answer}
                )
        log.info("alert_explained", alert_id=alert_id, group=len(group))
        return await self.report(alert_id)

    def settings_view(self) -> dict[str, Any]:
        return self.settings.public_view()

    async def update_settings(self, patch: dict[str, Any]) -> dict[str, Any]:
        """Validate the patch over the current settings, apply it and keep it."""
        merged = self.settings.merged(patch)  # raises ValueError naming the field
        async with self._sessions() as session:
            stored = await alert_repo.load_override(session, name=SETTINGS_NAME) or {}
            await alert_repo.save_override(
                session, name=SETTINGS_NAME, value=deep_merge(stored, patch)
            )
        self._apply(merged)
        log.info("alert_settings_updated", fields=sorted(patch))
        return self.settings_view()

    async def create_silence(self, **row: Any) -> dict[str, Any]:
        async with self._sessions() as session:
            stored = await alert_repo.create_silence(session, row=row)
        self.policy.silences.add(silence_from_row(stored))
        log.info("silence_created", silence_id=stored["id"], matchers=stored["matchers"])
        return stored

    async def list_silences(self) -> list[dict[str, Any]]:
        now = self._clock()
        async with self._sessions() as session:
            rows = await alert_repo.list_silences(session)
        for row in rows:
            row["active"] = row["starts_at"] <= now < row["ends_at"]
        return sorted(rows, key=lambda r: (not r["active"], -r["id"]))

    async def end_silence(self, silence_id: int) -> alert_repo.SilenceEnd:
        """End a silence now, keeping its row as the record of the time it covered (see
        `alert_repo.end_silence`); from now on it mutes nothing and lists as inactive."""
        async with self._sessions() as session:
            outcome = await alert_repo.end_silence(session, silence_id=silence_id, at=self._clock())
        if outcome in ("ended", "cancelled"):
            self.policy.silences.remove(silence_id)
            log.info("silence_ended", silence_id=silence_id, outcome=outcome)
        return outcome

    async def sync_from_store(self) -> int:
        """Pick up what other processes changed: silences created or deleted, maintenance
        windows, and alerts acknowledged, through their API. The leader runs this every few
        seconds when processes share the work; returns how many changes it applied."""
        now = self._clock()
        async with self._sessions() as session:
            silences = await alert_repo.list_silences(session)
            firing = await alert_repo.firing_alerts(session)
        changes = await self.reload_maintenance()
        # A silence ended early elsewhere keeps its row with an earlier end: compare the
        # ends, not only the ids, and hold only those not over yet.
        stored = {row["id"]: row for row in silences if row["ends_at"] > now}
        for silence in self.policy.silences.all():
            row = stored.get(silence.id or 0)
            if row is None or row["ends_at"] != silence.ends_at:
                self.policy.silences.remove(silence.id or 0)
                changes += 1
        for silence_id, row in stored.items():
            if self.policy.silences.get(silence_id) is None:
                self.policy.silences.add(silence_from_row(row))
                changes += 1
        for row in firing:
            by = row.get("acknowledged_by")
            entry = self.policy.get(row["fingerprint"])
            if row.get("acknowledged_at") and entry is not None and not entry.acknowledged_by:
                self.policy.acknowledge(row["fingerprint"], by=by or "unknown", now=now)
                changes += 1
        return changes
