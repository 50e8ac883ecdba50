"""The async engine and session factory: one place decides how we talk to SQLite or
PostgreSQL (connection pragmas, pool checks, URL normalisation)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

# Applied on every new SQLite connection, because SQLite keeps most of these per connection.
# WAL lets the dashboard read while the recorder writes; NORMAL is durable across app crashes
# in WAL mode (only an OS crash can lose the last commits) and saves an fsync per commit;
# busy_timeout makes a writer wait for the lock instead of failing at once.
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=5000",
)

# Hosting platforms hand out driverless URLs; the engine is async, so pick the async driver.
_DRIVER_PREFIXES = {
    "postgres://": "postgresql+asyncpg://",
    "postgresql://": "postgresql+asyncpg://",
    "sqlite://": "sqlite+aiosqlite://",
}


def normalize_url(url: str) -> str:
    """Return `url` with the async driver named (`postgresql+asyncpg`, `sqlite+aiosqlite`)."""
    for prefix, replacement in _DRIVER_PREFIXES.items():
        if url.startswith(prefix):
            return replacement + url[len(prefix) :]
    return url


def _sqlite_file(url: str) -> Path | None:
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).expanduser()


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def create_engine(url: str, **engine_kwargs: Any) -> AsyncEngine:
    """Create the async engine for `url` (SQLite via aiosqlite or PostgreSQL via asyncpg).

    For a SQLite file the parent directory is created, so the default
    `sqlite+aiosqlite:///data/api_monitor.db` works from a fresh checkout.
    """
    url = normalize_url(url)
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        path = _sqlite_file(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = _create_async_engine(url, **engine_kwargs)
        event.listen(engine.sync_engine, "connect", _set_sqlite_pragmas)
        return engine
    # A server may drop idle connections (restarts, proxies); a ping costs one round trip
    # at checkout and saves a failed batch.
    engine_kwargs.setdefault("pool_pre_ping", True)
    return _create_async_engine(url, **engine_kwargs)


def pool_options(url: str, pool_size: int, max_overflow: int) -> dict[str, int]:
    """Pool sizes for a server database; SQLite keeps SQLAlchemy's own pool for files."""
    if make_url(normalize_url(url)).get_backend_name() == "sqlite":
        return {}
    return {"pool_size": pool_size, "max_overflow": max_overflow}


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded values after commit, so results can be read after it."""
    return async_sessionmaker(engine, expire_on_commit=False)
