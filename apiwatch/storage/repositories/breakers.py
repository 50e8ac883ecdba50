"""The `circuit_breakers` table: saving the breakers' snapshot and loading it back on start."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from apiwatch.domain import utcnow
from apiwatch.storage.models import CircuitBreakerRow
from apiwatch.storage.repositories._rows import upsert

_TABLE = CircuitBreakerRow.__table__
_C = _TABLE.c
STATES = frozenset({"closed", "open", "half_open"})
_UPDATABLE = ("state", "consecutive_failures", "opened_at", "retry_at", "updated_at")


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def _breaker_row(provider: str, entry: dict[str, Any], now: Any) -> dict[str, Any]:
    if not provider:
        raise ValueError(f"breaker entry without a provider: {entry!r}")
    # str() so a StrEnum state is stored as its value.
    state = str(entry.get("state", ""))
    if state not in STATES:
        raise ValueError(f"breaker {provider!r}: unknown state {entry.get('state')!r}")
    return {
        "provider": provider,
        "state": state,
        "consecutive_failures": int(entry.get("consecutive_failures") or 0),
        "opened_at": _float_or_none(entry.get("opened_at")),
        "retry_at": _float_or_none(entry.get("retry_at")),
        "updated_at": now,
    }


async def save_breakers(session: AsyncSession, *, snapshot: dict[str, dict[str, Any]]) -> None:
    """Insert or update one row per provider of `snapshot` and commit.

    `snapshot` is `{provider: {"state", "consecutive_failures", "opened_at", "retry_at"}}`
    (other keys are ignored); providers missing from it are left as they are. An entry with
    an unknown state raises ValueError before anything is written.
    """
    if not snapshot:
        return
    now = utcnow()
    rows = [_breaker_row(provider, entry, now) for provider, entry in snapshot.items()]
    await upsert(session, table=_TABLE, rows=rows, key="provider", updatable=_UPDATABLE)


async def load_breakers(session: AsyncSession) -> dict[str, dict[str, Any]]:
    """Every saved breaker: `{provider: {"state", "consecutive_failures", "opened_at",
    "retry_at"}}`, ordered by provider; the shape `save_breakers` takes."""
    result = await session.execute(
        select(_C.provider, _C.state, _C.consecutive_failures, _C.opened_at, _C.retry_at).order_by(
            _C.provider
        )
    )
    return {
        provider: {
            "state": state,
            "consecutive_failures": failures,
            "opened_at": opened_at,
            "retry_at": retry_at,
        }
        for provider, state, failures, opened_at, retry_at in result
    }
