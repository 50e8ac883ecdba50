"""The schema: one declarative `Base` and a typed model per table (docs/operations.md).

Table names are the seed's and are part of the contract with dashboards and SQL users;
`migrations/versions/` must create exactly this (a test compares the two).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from apiwatch.storage.columns import NAMING_CONVENTION, BigIntId, DecimalText, UTCDateTime


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


class ApiRefusal(Base):
    """Requests refused before reaching the API (no key, bad key, throttled), counted per
    minute, status, reason and client address prefix: one row per group, not one per
    request, so unauthenticated traffic cannot flood the database."""

    __tablename__ = "api_refusals"
    __table_args__ = (Index("ix_api_refusals_minute", "minute"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    minute: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[int] = mapped_column(Integer)
    # The middleware's refusal reason (`missing_key`, `rate_limited_hour`, …); "unknown" for
    # rows counted before reasons were stored (migration 0005).
    reason: Mapped[str] = mapped_column(String(32), server_default="unknown")
    # IPv4 /24 or IPv6 /48, e.g. "203.0.113.0/24"; "unknown" when the server gave none.
    client_prefix: Mapped[str] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(Integer)


class HourlyRollup(Base):
    """One hour of one series, summarized: what charts read instead of raw rows.

    `kind` is `probe` (subject = provider, detail = "") or `api` (subject = key id or "-",
    detail = route). `latency_hist` counts latencies in fixed buckets (see
    `apiwatch.analysis.rollups`), so hours merge into days and percentiles stay honest.
    `outcomes` ({outcome: count}, probe rows only) counts the hour's checks per outcome;
    NULL on rows rolled up before it existed (revision 0005) and on other kinds.
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
    outcomes: Mapped[dict[str, int] | None] = mapped_column(JSON)
    p50_ms: Mapped[float | None] = mapped_column(Float)
    p95_ms: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TlsCertificate(Base):
    """The newest TLS certificate reading of one provider's host (`CertificateSeen`): one
    row per provider, host and port, replaced at each reading (every few hours), so every
    process and a restarted one see the same certificate."""

    __tablename__ = "tls_certificates"

    provider: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    port: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Whether the probe's verification passed (chain and host name), and the name alone.
    verified: Mapped[bool] = mapped_column(Boolean)
    host_matches: Mapped[bool | None] = mapped_column(Boolean)
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    not_after: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The earliest expiry of any certificate in the chain (`chain_source` says which chain).
    chain_not_after: Mapped[datetime | None] = mapped_column(UTCDateTime)
    subject: Mapped[str] = mapped_column(Text, default="")
    issuer: Mapped[str] = mapped_column(Text, default="")
    names: Mapped[list[str]] = mapped_column(JSON, default=list)
    chain_source: Mapped[str] = mapped_column(String(16))
    error: Mapped[str] = mapped_column(Text, default="")
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ProviderSpecRow(Base):
    """A provider defined through the API (`POST /api/providers`), or an override of a file
    provider: its catalogue spec as JSON. `version` grows with every change of the row."""

    __tablename__ = "provider_specs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    # `api` (a provider no file defines) or `api-override` (it replaces a file's).
    source: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_by: Mapped[str] = mapped_column(String(160))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ProviderChange(Base):
    """One change of a provider through the API: who (the API key's id and name, never the
    key), when, what (`create`, `replace`, `patch`, `delete`), the spec before and after
    and the changed field paths. Its highest id is the catalogue version processes poll."""

    __tablename__ = "provider_changes"
    __table_args__ = (Index("ix_provider_changes_provider_at", "provider", "at"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    key_id: Mapped[int | None] = mapped_column(Integer)
    key_name: Mapped[str] = mapped_column(String(128))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    diff: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


TABLES = Base.metadata.tables
