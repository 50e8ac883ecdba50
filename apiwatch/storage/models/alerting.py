"""Tables of alerting: alerts and their deliveries, silences, maintenance windows, and the
settings overrides the API writes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from apiwatch.storage.columns import BigIntId, UTCDateTime
from apiwatch.storage.models.base import Base


class Alert(Base):
    """One alert through its life: fired, sent, acknowledged, resolved."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_provider_fired_at", "provider", "fired_at"),
        # Dedup looks up the open alert with the same fingerprint.
        Index("ix_alerts_fingerprint_state", "fingerprint", "state"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(String(128))
    provider: Mapped[str | None] = mapped_column(String(64))
    category: Mapped[str | None] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))
    fingerprint: Mapped[str] = mapped_column(String(256))
    group_key: Mapped[str | None] = mapped_column(String(256))
    labels: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    suggested_action: Mapped[str | None] = mapped_column(Text)
    # The incident report of the alert's group: rule-based triage, or the LLM's.
    report: Mapped[str | None] = mapped_column(Text)
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    notifications: Mapped[int] = mapped_column(Integer, default=0)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(128))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Why dedup/grouping sent or held it back; shown to users (docs/alerting.md).
    decision_reason: Mapped[str] = mapped_column(Text, default="")


class AlertDelivery(Base):
    """One notification's delivery to one channel: delivered or failed, never lost silently."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (Index("ix_alert_deliveries_group_key_at", "group_key", "at"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    group_key: Mapped[str] = mapped_column(String(256))
    alert_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    channel: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(64))
    delivered: Mapped[bool] = mapped_column(Boolean)
    attempts: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    retryable: Mapped[bool | None] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class Silence(Base):
    """A maintenance window: alerts matching every matcher are muted between two times."""

    __tablename__ = "silences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    matchers: Mapped[dict[str, str]] = mapped_column(JSON)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(128))
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MaintenanceWindowRow(Base):
    """A planned maintenance window created through the API (`alerting.maintenance`): one-off
    or recurring (`recurrence`, read in `timezone`), matching alerts like a silence."""

    __tablename__ = "maintenance_windows"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(200))
    message: Mapped[str] = mapped_column(Text, default="")
    matchers: Mapped[dict[str, str]] = mapped_column(JSON)
    timezone: Mapped[str] = mapped_column(String(64))
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_s: Mapped[int | None] = mapped_column(Integer)
    recurrence: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SettingRow(Base):
    """A user's override of a settings document (e.g. `alerts`), kept across restarts."""

    __tablename__ = "settings_overrides"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
