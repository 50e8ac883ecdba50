"""Tables of apiwatch's own API: keys (hashed), per-request usage and refused requests."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from apiwatch.storage.columns import BigIntId, UTCDateTime
from apiwatch.storage.models.base import Base


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
