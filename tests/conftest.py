"""Database fixtures: a real SQLite file and a real PostgreSQL database, never mocks.

Shared by every test package. PostgreSQL is the server at
APIWATCH_TEST_POSTGRES_URL (default postgresql+asyncpg://postgres@127.0.0.1:5432/test);
every test module gets its own freshly created database, dropped afterwards. When the
server is unreachable the PostgreSQL cases are skipped, except under CI=true, where that
is a failure.

Redis is the server at APIWATCH_TEST_REDIS_URL (default redis://127.0.0.1:6379/0): skipped
when unreachable, a failure under CI=true; `redis_client` and `redis_prefix` (keys deleted
after the test).

Every test also runs with its own Redis key prefix, live-feed channel and recorder spill
directory (`_own_redis_names_and_spill_dir`, autouse, through the APIWATCH_* variables, so
the processes a test starts inherit them): the suite runs in three processes at once
(pytest-xdist), and a name shared between two tests would let one see the other's keys,
feed messages or spilled rows.

Fixtures:
- `postgres_server_url` (session): URL of the admin database; skips/fails if unreachable.
- `db_url` (module, parametrized sqlite/postgres): an empty database of its own.
- `migrated_db_url` (module): `db_url` after `upgrade()`.
- `db_engine` (function): an engine on the migrated database; its tables are emptied
  after the test, so each test starts from no rows.
- `db_sessionmaker` (function): sessions on `db_engine`.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sqlalchemy import delete
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from apiwatch.storage.db import create_engine, create_sessionmaker
from apiwatch.storage.migrate import upgrade, upgrade_sync
from apiwatch.storage.models import Base
from tests.faults.servers import CuttableProxy

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files with a `slow(seconds)` mark (on a test, or on the whole file's `pytestmark`) are
    collected first, longest first, so that the test processes of `make test` (whole files
    each) start the wall-clock-bound ones early, instead of one process finishing alone with
    a long file while the others are idle. A file counts its largest mark."""
    seconds: dict[object, float] = {}
    for item in items:
        marker = item.get_closest_marker("slow")
        if marker is not None:
            took = float(marker.args[0]) if marker.args else 1.0
            seconds[item.path] = max(seconds.get(item.path, 0.0), took)
    items.sort(key=lambda item: -seconds.get(item.path, 0.0))


def _postgres_admin_url() -> str:
    return os.environ.get("APIWATCH_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


async def _execute_autocommit(url: str, sql: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.exec_driver_sql(sql)
    finally:
        await engine.dispose()


async def _probe_postgres(url: str) -> None:
    engine = create_engine(url, connect_args={"timeout": 3})
    try:
        async with engine.connect() as connection:
            await connection.exec_driver_sql("SELECT 1")
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    url = _postgres_admin_url()
    try:
        asyncio.run(_probe_postgres(url))
    except Exception as error:
        message = f"PostgreSQL at {make_url(url).render_as_string()} is unreachable: {error!r}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} (CI=true: PostgreSQL tests must run)")
        pytest.skip(message)
    return url


@pytest.fixture
async def postgres_behind_proxy(
    postgres_server_url: str,
) -> AsyncIterator[tuple[str, str, CuttableProxy]]:
    """(URL through a proxy the test can cut or pause, direct URL, the proxy) of a migrated
    PostgreSQL database of the test's own, dropped afterwards."""
    name = f"apiwatch_faults_{uuid.uuid4().hex[:10]}"
    await _execute_autocommit(postgres_server_url, f'CREATE DATABASE "{name}"')
    direct = make_url(postgres_server_url).set(database=name)
    await upgrade(direct.render_as_string(hide_password=False))
    proxy = CuttableProxy((direct.host or "127.0.0.1", direct.port or 5432))
    await proxy.start()
    via = direct.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    try:
        yield via, direct.render_as_string(hide_password=False), proxy
    finally:
        await proxy.stop()
        await _execute_autocommit(
            postgres_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
        )


@pytest.fixture(scope="module")
def _postgres_database(postgres_server_url: str) -> Iterator[str]:
    name = f"apiwatch_t_{uuid.uuid4().hex[:12]}"
    asyncio.run(_execute_autocommit(postgres_server_url, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(postgres_server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        # FORCE closes connections a failed test may have left open.
        asyncio.run(
            _execute_autocommit(
                postgres_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
            )
        )


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An empty database of this test module's own, on each backend."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "apiwatch.db"
        return f"sqlite+aiosqlite:///{path}"
    return request.getfixturevalue("_postgres_database")


@pytest.fixture(scope="module")
def migrated_db_url(db_url: str) -> str:
    upgrade_sync(db_url)
    return db_url


@pytest.fixture
async def db_engine(migrated_db_url: str) -> AsyncIterator[AsyncEngine]:
    # Per test: asyncpg connections belong to the event loop that opened them.
    engine = create_engine(migrated_db_url)
    try:
        yield engine
        async with engine.begin() as connection:
            for table in reversed(Base.metadata.sorted_tables):
                await connection.execute(delete(table))
    finally:
        await engine.dispose()


@pytest.fixture
def db_sessionmaker(db_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(db_engine)


async def empty_tables(url: str) -> None:
    """Delete every row, for tests that share a module's database but need none of its rows."""
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            for table in reversed(Base.metadata.sorted_tables):
                await connection.execute(delete(table))
    finally:
        await engine.dispose()


REDIS_URL = os.environ.get("APIWATCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _unavailable(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: Redis tests must run)")
    pytest.skip(message)


async def connect_redis() -> Any:
    """A `redis.asyncio.Redis` on the test server, or skip (fail under CI) with the reason."""
    try:
        from redis.asyncio import Redis
    except ImportError as error:
        _unavailable(f"the redis package is not installed: {error}")
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=5)
    try:
        await client.ping()
    except Exception as error:
        await client.aclose()
        _unavailable(f"Redis at {REDIS_URL} is unreachable: {type(error).__name__}: {error}")
    return client


def new_prefix() -> str:
    return f"apiwatch:test:{uuid.uuid4().hex}:"


async def delete_prefix(client: Any, prefix: str) -> None:
    keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
    if keys:
        await client.delete(*keys)


@pytest.fixture(autouse=True)
def _own_redis_names_and_spill_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Settings built in the test, and the processes it starts with this environment, use
    names of this test alone; a test that sets its own still wins. The keys left under the
    prefix are deleted afterwards (where Redis answers: most tests never touch it)."""
    prefix = new_prefix()
    monkeypatch.setenv("APIWATCH_REDIS_PREFIX", prefix)
    monkeypatch.setenv("APIWATCH_LIVE_REDIS_CHANNEL", f"{prefix}live")
    # Not created here: the recorder creates it on the first spilled row.
    spill = tmp_path_factory.getbasetemp() / f"spill-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("APIWATCH_SPILL_DIR", str(spill))
    yield
    _delete_prefix_sync(prefix)


def _delete_prefix_sync(prefix: str) -> None:
    try:
        from redis import Redis
    except ImportError:
        return
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=0.5, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    except Exception:  # an unreachable Redis held nothing of this test
        return
    finally:
        client.close()


@pytest.fixture
async def redis_client() -> AsyncIterator[Any]:
    client = await connect_redis()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def redis_prefix(redis_client: Any) -> AsyncIterator[str]:
    prefix = new_prefix()
    try:
        yield prefix
    finally:
        await delete_prefix(redis_client, prefix)
