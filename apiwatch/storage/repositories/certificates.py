"""The `tls_certificates` table: the newest certificate reading per provider, host and port,
saved as each reading arrives and read back by the API, the metrics and a restart."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from apiwatch.domain import CertificateSeen, utcnow
from apiwatch.storage.models import TlsCertificate
from apiwatch.storage.repositories._rows import _dialect_insert, columns, row_dict

_TABLE = TlsCertificate.__table__
_C = _TABLE.c
_KEY = ("provider", "host", "port")


def _row(reading: CertificateSeen) -> dict[str, Any]:
    return {
        "provider": reading.provider,
        "host": reading.host,
        "port": reading.port,
        "verified": reading.verified,
        "host_matches": reading.host_matches,
        "not_before": reading.not_before,
        "not_after": reading.not_after,
        "chain_not_after": reading.chain_not_after,
        "subject": reading.subject,
        "issuer": reading.issuer,
        "names": list(reading.names),
        "chain_source": reading.chain_source,
        "error": reading.error,
        "checked_at": reading.at,
        "updated_at": utcnow(),
    }


async def save_reading(session: AsyncSession, *, reading: CertificateSeen) -> None:
    """Insert or replace the row of the reading's provider, host and port, then commit. An
    older reading (another process's, arriving late) does not replace a newer one."""
    row = _row(reading)
    statement = _dialect_insert(session, _TABLE)
    statement = statement.on_conflict_do_update(
        index_elements=list(_KEY),
        set_={name: statement.excluded[name] for name in row if name not in _KEY},
        where=_C.checked_at <= statement.excluded.checked_at,
    )
    await session.execute(statement, [row])
    await session.commit()


def _expiry() -> Any:
    return func.coalesce(_C.chain_not_after, _C.not_after)


async def list_certificates(
    session: AsyncSession, *, provider: str | None = None
) -> list[dict[str, Any]]:
    """Every stored reading (or one provider's), soonest expiry first; readings without a
    date (a certificate that could not be read) last."""
    query = select(*columns(_TABLE)).order_by(
        _expiry().is_(None), _expiry(), _C.provider, _C.host, _C.port
    )
    if provider is not None:
        query = query.where(_C.provider == provider)
    return [row_dict(row) for row in await session.execute(query)]


def as_reading(row: dict[str, Any]) -> CertificateSeen:
    """A stored row as the reading it was saved from."""
    return CertificateSeen(
        provider=row["provider"],
        host=row["host"],
        port=row["port"],
        at=row["checked_at"],
        verified=row["verified"],
        not_after=row["not_after"],
        not_before=row["not_before"],
        chain_not_after=row["chain_not_after"],
        subject=row["subject"],
        issuer=row["issuer"],
        names=tuple(row["names"] or ()),
        chain_source=row["chain_source"],
        host_matches=row["host_matches"],
        error=row["error"],
    )
