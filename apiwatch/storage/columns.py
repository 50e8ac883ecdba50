"""Column types and naming shared by every table: timestamps stored in UTC and read back
aware, exact decimals stored as text, BIGINT ids that still autoincrement on SQLite, and
deterministic constraint names for migrations."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Dialect,
    Integer,
    String,
    TypeDecorator,
)

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

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """On SQLite, one C-level `isoformat` instead of the two Python steps (ours, then
        SQLAlchemy's DATETIME formatting): usage rows bind one timestamp per request. Used
        only when it gives exactly SQLAlchemy's text, checked here on sample values."""
        standard = super().bind_processor(dialect)
        if dialect.name != "sqlite" or standard is None:
            return standard
        samples = (datetime(2025, 1, 2, 3, 4, 5, 6789, UTC), datetime(1999, 12, 31, tzinfo=UTC))
        if any(standard(sample) != _sqlite_text(sample) for sample in samples):
            return standard
        return _sqlite_text

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _sqlite_text(value: datetime | None) -> str | None:
    """An aware datetime as SQLite stores it: UTC, no offset, always with microseconds."""
    if value is None:
        return None
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(
            f"naive datetime {value.isoformat()} given; pass a timezone-aware datetime "
            "(e.g. apiwatch.domain.utcnow())"
        )
    return value.astimezone(UTC).isoformat(" ", "microseconds")[:26]


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
