"""Tables of apiwatch's own state: system metrics, breakers, events, hourly roll-ups,
certificate readings, and providers managed from the API with their change history."""

from __future__ import annotations

from datetime import datetime
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

from apiwatch.storage.columns import BigIntId, UTCDateTime
from apiwatch.storage.models.base import Base


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
