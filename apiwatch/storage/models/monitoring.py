"""Tables of what the monitor sees: providers, connection attempts, status changes, collected
data, budget use, schedules and their compliance, failure logs."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from apiwatch.storage.columns import BigIntId, DecimalText, UTCDateTime
from apiwatch.storage.models.base import Base


class Provider(Base):
    """One catalogue provider, synced from the YAML files at start-up."""

    __tablename__ = "providers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(64))
    base_url: Mapped[str] = mapped_column(String(500))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ConnectionAttempt(Base):
    """One `ProbeResult`: the table everything else is derived from."""

    __tablename__ = "connection_attempts"
    __table_args__ = (
        Index("ix_connection_attempts_provider_started_at", "provider", "started_at"),
        Index("ix_connection_attempts_outcome_started_at", "outcome", "started_at"),
        # "Latest check" and retention scan by time alone.
        Index("ix_connection_attempts_started_at", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(64))
    endpoint: Mapped[str] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(32))
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text, default="")
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    # False for an attempt that was retried at once; uptime and failure rates count only
    # the final attempt of each check, so one check tried three times is one failure.
    final: Mapped[bool] = mapped_column(Boolean, default=True)
    key_label: Mapped[str | None] = mapped_column(String(64))
    response_bytes: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The probing worker's location (APIWATCH_LOCATION); "" without locations.
    location: Mapped[str] = mapped_column(String(64), default="", server_default="")


class StatusChangeRow(Base):
    """One `StatusChange`; the newest per provider restores state after a restart."""

    __tablename__ = "status_changes"
    __table_args__ = (Index("ix_status_changes_provider_changed_at", "provider", "changed_at"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(64))
    old_status: Mapped[str] = mapped_column(String(16))
    new_status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DataCollection(Base):
    """One normalized data point a collector took from a provider's payload."""

    __tablename__ = "data_collections"
    __table_args__ = (
        Index("ix_data_collections_provider_fetched_at", "provider", "fetched_at"),
        # Latest value per item across providers (consensus, freshness, news dedup).
        Index("ix_data_collections_item_fetched_at", "item", "fetched_at"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(64))
    # `BTC-USD`, `ETH-gas`, `fear_greed`, `news:<url>` (urls can be long).
    item: Mapped[str] = mapped_column(String(1024))
    # A number (a price, a gas fee) goes in `value`, exact; a non-numeric point (a headline,
    # a classification like "Extreme Fear") in `text`; anything structured in `values`.
    value: Mapped[Decimal | None] = mapped_column(DecimalText)
    text: Mapped[str | None] = mapped_column(Text)
    values: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    data_timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RateLimitUsage(Base):
    """A snapshot of how much of one rate-limit window a provider has used."""

    __tablename__ = "rate_limit_usage"
    __table_args__ = (Index("ix_rate_limit_usage_provider_recorded_at", "provider", "recorded_at"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(64))
    window: Mapped[str] = mapped_column(String(32))
    limit: Mapped[int] = mapped_column(Integer)
    used: Mapped[int] = mapped_column(Integer)
    # Where `used` came from: our own count, or the provider's rate-limit headers.
    source: Mapped[str] = mapped_column(String(32))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ScheduleConfig(Base):
    """The configured interval of one provider's category of jobs."""

    __tablename__ = "schedule_config"
    __table_args__ = (UniqueConstraint("provider", "category"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(64))
    interval_s: Mapped[float] = mapped_column(Float)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ScheduleCompliance(Base):
    """Whether one planned run started on time, late, or not at all."""

    __tablename__ = "schedule_compliance"
    __table_args__ = (
        Index("ix_schedule_compliance_provider_planned_at", "provider", "planned_at"),
        Index("ix_schedule_compliance_category_planned_at", "category", "planned_at"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(64))
    planned_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lateness_ms: Mapped[float | None] = mapped_column(Float)
    result: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text, default="")


class FailureLog(Base):
    """A failure episode of one endpoint, across its retries."""

    __tablename__ = "failure_logs"
    __table_args__ = (Index("ix_failure_logs_provider_last_at", "provider", "last_at"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(64))
    endpoint: Mapped[str] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    final_outcome: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text, default="")
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)
