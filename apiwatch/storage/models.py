"""The schema: one declarative `Base` and a typed model per table (DESIGN.md §5).

Table names are the seed's and are part of the contract with dashboards and SQL users;
`migrations/versions/` must create exactly this (a test compares the two).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Deterministic constraint names, so migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT on PostgreSQL for tables that grow by millions of rows; SQLite only autoincrements
# a column declared exactly INTEGER PRIMARY KEY, hence the variant.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is stored in UTC and always read back timezone-aware.

    SQLite has no timezone type and returns naive values; PostgreSQL returns aware ones.
    Callers compare results with aware datetimes, so both must come back aware. Naive
    datetimes are refused rather than guessed at: a naive value is a bug upstream.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise ValueError(
                f"naive datetime {value.isoformat()} given; pass a timezone-aware datetime "
                "(e.g. apiwatch.domain.utcnow())"
            )
        value = value.astimezone(UTC)
        # SQLite compares timestamps as text; storing every value in UTC without an offset
        # keeps that comparison chronological.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class DecimalText(TypeDecorator[Decimal]):
    """An exact decimal stored as its text.

    Prices arrive as strings with up to 18 decimals; SQLite's NUMERIC would store them as
    8-byte floats and lose digits, so the text is kept and read back as `Decimal`. Sums and
    medians are computed in Python, never in SQL.
    """

    impl = String(64)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise ValueError(f"DecimalText takes a Decimal, got {type(value).__name__}")
        if not value.is_finite():
            raise ValueError(f"DecimalText refuses the non-finite value {value}")
        return format(value, "f")

    def process_result_value(self, value: str | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


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
    # Why dedup/grouping sent or held it back; shown to users (DESIGN.md §10).
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


class SettingRow(Base):
    """A user's override of a settings document (e.g. `alerts`), kept across restarts."""

    __tablename__ = "settings_overrides"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SystemMetric(Base):
    """One sample of one of apiwatch's own metrics (queue depth, loop lag, ...)."""

    __tablename__ = "system_metrics"
    # No provider column: the name plays its part in the (series, time) index.
    __table_args__ = (Index("ix_system_metrics_name_recorded_at", "name", "recorded_at"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    value: Mapped[float] = mapped_column(Float)
    labels: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CircuitBreakerRow(Base):
    """The persisted state of one provider's circuit breaker, restored after a restart.

    `opened_at` and `retry_at` are unix seconds (floats), as the breaker keeps them.
    """

    __tablename__ = "circuit_breakers"

    provider: Mapped[str] = mapped_column(String(64), primary_key=True)
    # closed / open / half_open
    state: Mapped[str] = mapped_column(String(16))
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    opened_at: Mapped[float | None] = mapped_column(Float)
    retry_at: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EventRow(Base):
    """One operational event (a rate-limit warning, an expired key, a breaker transition)."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_provider_at", "provider", "at"),
        Index("ix_events_kind_at", "kind", "at"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    provider: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiKey(Base):
    """A key for apiwatch's own API. Only its hash is stored; the key is shown once."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    scope: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters, to tell keys apart in listings ("aw_AbCd…").
    prefix: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    minute_limit: Mapped[int | None] = mapped_column(Integer)
    hour_limit: Mapped[int | None] = mapped_column(Integer)
    day_limit: Mapped[int | None] = mapped_column(Integer)
    usage_count: Mapped[int] = mapped_column(BigInteger, default=0)
    last_used: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiUsage(Base):
    """One request to the protected API: who, which route, how it went."""

    __tablename__ = "api_usage"
    __table_args__ = (
        Index("ix_api_usage_key_id_at", "key_id", "at"),
        Index("ix_api_usage_at", "at"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    key_id: Mapped[int | None] = mapped_column(Integer)
    key_name: Mapped[str | None] = mapped_column(String(128))
    # The route template (`/api/providers/{provider_id}`), never the raw path.
    route: Mapped[str] = mapped_column(String(256))
    method: Mapped[str] = mapped_column(String(8))
    status: Mapped[int] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float)
    client: Mapped[str | None] = mapped_column(String(64))
    authorized: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class HourlyRollup(Base):
    """One hour of one series, summarized: what charts read instead of raw rows.

    `kind` is `probe` (subject = provider, detail = "") or `api` (subject = key id or "-",
    detail = route). `latency_hist` counts latencies in fixed buckets (see
    `apiwatch.analysis.rollups`), so hours merge into days and percentiles stay honest.
    """

    __tablename__ = "hourly_rollups"
    __table_args__ = (
        UniqueConstraint("kind", "subject", "detail", "hour"),
        Index("ix_hourly_rollups_kind_hour", "kind", "hour"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(String(256), default="")
    hour: Mapped[datetime] = mapped_column(UTCDateTime)
    count: Mapped[int] = mapped_column(Integer)
    errors: Mapped[int] = mapped_column(Integer)
    latency_ms_sum: Mapped[float] = mapped_column(Float)
    latency_hist: Mapped[list[int]] = mapped_column(JSON)
    p50_ms: Mapped[float | None] = mapped_column(Float)
    p95_ms: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


TABLES = Base.metadata.tables
