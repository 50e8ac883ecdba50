"""What happens to a notification once the policy releases it, apart from the delivery
itself (delivery.py): the report it carries, and its record in the database.

The report is the rule-based triage, with the LLM's report on top when one is configured
and answers within its timeout. The record counts the notification on each of its alerts
and stores one delivery row per channel, delivered or not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from apiwatch.alerting.config import LlmSettings
from apiwatch.alerting.delivery import DeliveryOutcome
from apiwatch.alerting.llm import llm_report
from apiwatch.alerting.model import AlertState, Notification
from apiwatch.alerting.triage import triage
from apiwatch.storage.repositories import alerts as alert_repo


async def compose_report(
    notification: Notification,
    *,
    statuses: Mapping[str, str],
    llm: LlmSettings,
    llm_key: str | None,
    http: aiohttp.ClientSession | None,
) -> str:
    """The notification's report: rule-based triage, led by the LLM's answer when it has
    one. The LLM never delays sending beyond its timeout; the rule-based report stands
    otherwise."""
    verdict = triage(notification.alerts, statuses=statuses)
    if not (llm.url and llm_key and http is not None):
        return verdict.report
    answer = await llm_report(
        notification.alerts,
        url=llm.url,
        key=llm_key,
        model=llm.model,
        timeout_s=llm.timeout_s,
        session=http,
    )
    if answer:
        return f"{answer}\n\n(rule-based triage) {verdict.report}"
    return verdict.report


async def record_sent(
    sessions: async_sessionmaker[AsyncSession],
    notification: Notification,
    report: str,
    outcomes: Sequence[DeliveryOutcome],
    *,
    now: datetime,
    stored_id: Callable[[str], int | None] | None = None,
) -> None:
    """Store the report on each alert of the notification (a firing one also counts the
    notification and its first send) and one delivery row per channel outcome.
    `stored_id` finds the row of an alert whose row was written after the notification was
    made (the database was slow or away then), by fingerprint."""
    found = (
        a.alert_id if a.alert_id is not None or stored_id is None else stored_id(a.fingerprint)
        for a in notification.alerts
    )
    alert_ids = [alert_id for alert_id in found if alert_id is not None]
    async with sessions() as session:
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
