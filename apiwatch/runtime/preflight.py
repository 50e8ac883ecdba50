"""Checks before anything starts: the port is free, the database answers and takes the
migrations, Redis answers. Each failure becomes a `StartupProblem`: which setting, which
value (password masked), what went wrong and what to try, in one or two lines, so a
newcomer reads the cause instead of a long traceback.

The port is checked first, before a banner, migrations or a first admin key are printed.
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url

from apiwatch.storage.db import create_engine, normalize_url
from apiwatch.storage.migrate import upgrade

CONNECT_TIMEOUT_S = 5.0

DATABASE_EXAMPLES = (
    "sqlite+aiosqlite:///data/api_monitor.db or postgresql+asyncpg://USER:PASSWORD@HOST:5432/DB"
)


class StartupProblem(Exception):
    """A configuration or environment mistake found before start: exit status 2."""

    def __init__(self, setting: str, value: str, what: str, hint: str) -> None:
        super().__init__(f"{setting}={value}: {what}")
        self.setting, self.value, self.what, self.hint = setting, value, what, hint

    def __str__(self) -> str:
        return f"{self.setting}={self.value}: {self.what}\n  try: {self.hint}"


def mask_url(url: str) -> str:
    """The URL with its password replaced by ***, even when it does not parse."""
    return re.sub(r"(//[^:/@]*:)[^@/]*@", r"\1***@", url)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its causes and contexts, and SQLAlchemy's wrapped driver errors."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        todo.extend(
            [
                current.__cause__,
                current.__context__,
                orig if isinstance(orig, BaseException) else None,
            ]
        )


def _find(exc: BaseException, *names: str) -> BaseException | None:
    for item in _chain(exc):
        if type(item).__name__ in names:
            return item
    return None


def check_port(host: str, port: int, *, setting: str = "APIWATCH_PORT") -> None:
    """Bind and release `host:port` as the server will, before anything is printed."""
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise StartupProblem(
                setting,
                str(port),
                f"port {port} on {host} is already in use by another process",
                f"stop that process (another apiwatch or `make demo`?) or choose a free port, "
                f"e.g. {setting}={port + 10}",
            ) from exc
        if isinstance(exc, socket.gaierror) or exc.errno in (errno.EADDRNOTAVAIL, errno.EINVAL):
            raise StartupProblem(
                "APIWATCH_HOST",
                host,
                f"cannot listen on this address ({exc.strerror or exc})",
                "use an address of this machine: 127.0.0.1 (local only) or 0.0.0.0 (all)",
            ) from exc
        if exc.errno == errno.EACCES:
            raise StartupProblem(
                setting,
                str(port),
                "permission denied (ports below 1024 need root)",
                "use a port of 1024 or above, e.g. 7860",
            ) from exc
        raise


def _parse_database_url(url: str) -> URL:
    shown = mask_url(url)
    try:
        parsed = make_url(normalize_url(url))
    except Exception as exc:
        raise StartupProblem(
            "DATABASE_URL", shown, "this is not a database URL", f"e.g. {DATABASE_EXAMPLES}"
        ) from exc
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StartupProblem(
            "DATABASE_URL",
            shown,
            f"unsupported database {parsed.get_backend_name()!r}",
            f"apiwatch runs on SQLite or PostgreSQL, e.g. {DATABASE_EXAMPLES}",
        )
    return parsed


def _check_sqlite_dir(parsed: URL, shown: str) -> None:
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    directory = Path(database).expanduser().parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
        # A real write: permission bits alone do not tell (read-only mounts, root).
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".apiwatch-write-test-"):
            pass
    except OSError as exc:
        raise StartupProblem(
            "DATABASE_URL",
            shown,
            f"cannot write the SQLite directory {str(directory)!r} ({exc.strerror or exc})",
            "make that directory writable for this user, or point DATABASE_URL at another "
            "file, e.g. sqlite+aiosqlite:///" + os.path.join(tempfile.gettempdir(), "apiwatch.db"),
        ) from exc


def _explain_database(exc: BaseException, parsed: URL, shown: str) -> StartupProblem:
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    if (found := _find(exc, "gaierror")) is not None:
        return StartupProblem(
            "DATABASE_URL",
            shown,
            f"the host {parsed.host!r} cannot be resolved ({getattr(found, 'strerror', found)})",
            "check the host name in DATABASE_URL (127.0.0.1 for a local server)",
        )
    if (
        _find(exc, "ConnectionRefusedError") is not None
        or "Connect call failed" in str(exc)
        or "Connection refused" in str(exc)
    ):
        return StartupProblem(
            "DATABASE_URL",
            shown,
            f"nothing accepts connections on {where} (connection refused)",
            "start PostgreSQL there, or fix the host and port in DATABASE_URL",
        )
    if _find(exc, "InvalidAuthorizationSpecificationError") is not None:
        return StartupProblem(
            "DATABASE_URL",
            shown,
            f"PostgreSQL on {where} has no role {parsed.username!r}",
            f"create it (createuser {parsed.username}) or fix the user name in DATABASE_URL",
        )
    if _find(exc, "InvalidPasswordError") is not None:
        return StartupProblem(
            "DATABASE_URL",
            shown,
            f"PostgreSQL on {where} refused the password of {parsed.username!r}",
            "check the password in DATABASE_URL (URL-encode special characters)",
        )
    if _find(exc, "InvalidCatalogNameError") is not None:
        return StartupProblem(
            "DATABASE_URL",
            shown,
            f"PostgreSQL on {where} has no database {parsed.database!r}",
            f"create it (createdb -O {parsed.username or 'USER'} {parsed.database}) "
            "or fix the database name in DATABASE_URL",
        )
    if _find(exc, "TimeoutError", "CancelledError") is not None:
        return StartupProblem(
            "DATABASE_URL",
            shown,
            f"no answer from {where} within {CONNECT_TIMEOUT_S:g} s",
            "check that the host is reachable and the port is PostgreSQL's",
        )
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return StartupProblem(
        "DATABASE_URL",
        shown,
        f"the database cannot be opened or migrated: {first[:300]}",
        "run with APIWATCH_LOG_LEVEL=DEBUG for the full traceback",
    )


async def check_database(url: str, *, migrate: bool = True) -> None:
    """Parse, connect, and (by default) migrate; every failure as a StartupProblem."""
    shown = mask_url(url)
    parsed = _parse_database_url(url)
    if parsed.get_backend_name() == "sqlite":
        _check_sqlite_dir(parsed, shown)
    connect_args = (
        {"timeout": CONNECT_TIMEOUT_S} if parsed.get_backend_name() == "postgresql" else {}
    )
    try:
        engine = create_engine(url, connect_args=connect_args)
    except Exception as exc:
        raise StartupProblem(
            "DATABASE_URL",
            shown,
            f"no driver for {parsed.drivername!r}",
            f"use one of: {DATABASE_EXAMPLES}",
        ) from exc
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S * 2):
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        if migrate:
            await upgrade(url)
    except StartupProblem:
        raise
    except Exception as exc:
        raise _explain_database(exc, parsed, shown) from exc
    finally:
        await engine.dispose()


REDIS_HINT = "or leave REDIS_URL unset to keep budgets in memory"


def _redis_url_problem(url: str) -> str | None:
    """What redis-py would silently ignore: a database number that is not a number."""
    parts = urlsplit(url)
    database = unquote(parts.path).strip("/")
    if parts.scheme in ("redis", "rediss") and database and not database.isdigit():
        return f"the database number after the port, {database!r}, is not a number"
    return None


async def check_redis(url: str | None) -> None:
    """PING the Redis at `url` (nothing to do without one)."""
    if not url:
        return
    from redis.asyncio import Redis  # only with Redis configured: see `redis_from_settings`

    shown = mask_url(url)
    try:
        client = Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT_S)
        problem = _redis_url_problem(url)
    except ValueError as exc:
        problem = str(exc)
    if problem is not None:
        raise StartupProblem(
            "REDIS_URL",
            shown,
            f"this is not a Redis URL ({problem})",
            f"e.g. redis://127.0.0.1:6379/0, {REDIS_HINT}",
        )
    kwargs = client.connection_pool.connection_kwargs
    host = kwargs.get("host", "?")
    where = f"{host}:{kwargs.get('port', '?')}"
    try:
        await client.ping()
    except Exception as exc:
        if found := _find(exc, "AuthenticationError", "AuthenticationWrongNumberOfArgsError"):
            what = f"Redis on {where} refused the user name or password ({found})"
            hint = "check the user name and password in REDIS_URL (URL-encode special characters)"
        elif (found := _find(exc, "gaierror")) or "Name or service not known" in str(exc):
            reason = getattr(found, "strerror", None) or "name lookup failed"
            what = f"the host {host!r} cannot be resolved ({reason})"
            hint = f"check the host name in REDIS_URL (127.0.0.1 for a local server), {REDIS_HINT}"
        else:
            what = f"Redis on {where} does not answer ({str(exc).strip() or type(exc).__name__})"
            hint = f"start Redis there, {REDIS_HINT}"
        raise StartupProblem("REDIS_URL", shown, what, hint) from exc
    finally:
        await client.aclose()


async def check_services(database_url: str, redis_url: str | None) -> None:
    """The database (with migrations), then Redis."""
    await check_database(database_url)
    await check_redis(redis_url)
