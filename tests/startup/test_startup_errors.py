"""Every way a first start commonly goes wrong ends in one or two lines that name the
setting, its value (password masked), what went wrong and what to try; exit status 2; the
traceback only with APIWATCH_LOG_LEVEL=DEBUG. The CLI runs as a real subprocess against
the real PostgreSQL, Redis ports nobody listens on, and sockets the test holds."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import REDIS_URL
from tests.startup.support import free_port, port_in_use, run_cli

# Whole-file wall clock for the test processes' ordering (tests/conftest.py).
pytestmark = pytest.mark.slow(56)


def assert_short(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: this test must run)")
    pytest.skip(reason)


def _works(*command: str) -> bool:
    if shutil.which(command[0]) is None:
        return False
    done = subprocess.run([*command, "true"], capture_output=True, check=False)
    return done.returncode == 0


def test_unknown_database_host(tmp_path: Path) -> None:
    # In a network namespace of its own the name lookup fails without any packet leaving
    # the machine (only loopback exists there).
    if not _works("unshare", "-n"):
        _unavailable("needs `unshare -n` (root or user namespaces) to resolve names offline")
    result = run_cli(
        "db",
        "upgrade",
        cwd=tmp_path,
        env={"DATABASE_URL": "postgresql+asyncpg://app:hunter2@db.example.invalid:5432/app"},
        prefix=("unshare", "-n"),
    )
    assert_short(
        result,
        "DATABASE_URL=postgresql+asyncpg://app:***@db.example.invalid:5432/app",
        "'db.example.invalid' cannot be resolved",
        "try: check the host name",
    )
    assert "hunter2" not in result.stderr


def test_refused_database_port(tmp_path: Path) -> None:
    port = free_port()
    result = run_cli(
        "db",
        "upgrade",
        cwd=tmp_path,
        env={"DATABASE_URL": f"postgresql+asyncpg://app:hunter2@127.0.0.1:{port}/app"},
    )
    assert_short(
        result,
        f"DATABASE_URL=postgresql+asyncpg://app:***@127.0.0.1:{port}/app",
        f"nothing accepts connections on 127.0.0.1:{port} (connection refused)",
        "try: start PostgreSQL there",
    )
    assert "hunter2" not in result.stderr


def test_missing_postgres_role(tmp_path: Path, postgres_server_url: str) -> None:
    role = f"apiwatch_no_role_{uuid.uuid4().hex[:8]}"
    url = make_url(postgres_server_url).set(username=role, password="pw")
    result = run_cli(
        "db", "upgrade", cwd=tmp_path, env={"DATABASE_URL": url.render_as_string(False)}
    )
    assert_short(result, f"has no role '{role}'", f"createuser {role}", ":***@")


def test_missing_postgres_database(tmp_path: Path, postgres_server_url: str) -> None:
    name = f"apiwatch_no_db_{uuid.uuid4().hex[:8]}"
    url = make_url(postgres_server_url).set(database=name)
    result = run_cli(
        "db", "upgrade", cwd=tmp_path, env={"DATABASE_URL": url.render_as_string(False)}
    )
    assert_short(result, f"has no database '{name}'", f"createdb -O {url.username} {name}")


@pytest.mark.parametrize(
    "url", ["postgres ql://x", "mysql+aiomysql://u@h/db", "sqlite+nosuch:///x.db"]
)
def test_unparseable_or_unsupported_database_url(tmp_path: Path, url: str) -> None:
    result = run_cli("db", "upgrade", cwd=tmp_path, env={"DATABASE_URL": url})
    assert_short(result, f"DATABASE_URL={url}:", "try:", "sqlite+aiosqlite:///")


def test_unwritable_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    env = {"DATABASE_URL": "sqlite+aiosqlite:///data/api_monitor.db"}
    if os.geteuid() != 0:
        data.chmod(0o555)
        result = run_cli("db", "upgrade", cwd=tmp_path, env=env)
        data.chmod(0o755)
    else:
        # Root writes through permission bits, so make the directory a read-only mount in a
        # mount namespace of the CLI's own.
        if not _works("unshare", "-m"):
            _unavailable("needs `unshare -m` to make a read-only directory for root")
        script = f'mount --bind {data} {data} && mount -o remount,bind,ro {data} && "$@"'
        result = run_cli(
            "db",
            "upgrade",
            cwd=tmp_path,
            env=env,
            prefix=("unshare", "-m", "sh", "-c", script, "sh"),
        )
    assert_short(result, "cannot write the SQLite directory 'data'", "try:")
    assert not (data / "api_monitor.db").exists()


def test_redis_refused(tmp_path: Path) -> None:
    port = free_port()
    result = run_cli(
        "db",
        "upgrade",
        cwd=tmp_path,
        env={
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/a.db",
            "REDIS_URL": f"redis://:hunter2@127.0.0.1:{port}/0",
        },
    )
    assert_short(
        result,
        f"REDIS_URL=redis://:***@127.0.0.1:{port}/0",
        f"Redis on 127.0.0.1:{port} does not answer",
        "leave REDIS_URL unset",
    )
    assert "hunter2" not in result.stderr


def _with_redis(
    tmp_path: Path, redis_url: str, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/a.db", "REDIS_URL": redis_url}
    return run_cli("db", "upgrade", cwd=tmp_path, env=env, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "what"),
    [
        ("redis ://:hunter2@127.0.0.1:6379/0", "must specify one of the following schemes"),
        ("redis://:hunter2@127.0.0.1:port/0", "Port could not be cast to integer"),
        # redis-py would silently use database 0 for this one.
        ("redis://:hunter2@127.0.0.1:6379/zero", "the database number after the port, 'zero'"),
    ],
)
def test_unparseable_redis_url(tmp_path: Path, url: str, what: str) -> None:
    result = _with_redis(tmp_path, url)
    assert_short(
        result,
        f"REDIS_URL={url.replace('hunter2', '***')}: this is not a Redis URL",
        what,
        "try: e.g. redis://127.0.0.1:6379/0",
    )
    assert "hunter2" not in result.stderr


def test_unknown_redis_host(tmp_path: Path) -> None:
    # As for the database: in a network namespace of its own the lookup fails without any
    # packet leaving the machine (the resolver in /etc/resolv.conf may be off the machine).
    if not _works("unshare", "-n"):
        _unavailable("needs `unshare -n` (root or user namespaces) to resolve names offline")
    result = _with_redis(
        tmp_path, "redis://app:hunter2@no-such-host.invalid:6379", prefix=("unshare", "-n")
    )
    assert_short(
        result,
        "REDIS_URL=redis://app:***@no-such-host.invalid:6379:",
        "the host 'no-such-host.invalid' cannot be resolved",
        "try: check the host name in REDIS_URL",
    )
    assert "hunter2" not in result.stderr


async def test_wrong_redis_credentials(tmp_path: Path, redis_client: Any) -> None:
    # A user the test server does not have: Redis answers WRONGPASS whether or not the
    # default user has a password (a password alone is accepted when none is set).
    server = urlsplit(REDIS_URL)
    where = f"{server.hostname}:{server.port or 6379}"
    user = f"apiwatch-no-user-{uuid.uuid4().hex[:8]}"
    url = f"redis://{user}:hunter2@{where}/0"
    result = _with_redis(tmp_path, url)
    assert_short(
        result,
        f"REDIS_URL=redis://{user}:***@{where}/0:",
        "refused the user name or password",
        "try: check the user name and password in REDIS_URL",
    )
    assert "hunter2" not in result.stderr


def test_port_in_use_is_found_before_anything_else(tmp_path: Path) -> None:
    with port_in_use() as port:
        result = run_cli(
            "serve",
            "--port",
            str(port),
            cwd=tmp_path,
            env={"APIWATCH_LOG_JSON": "false"},
            timeout=30,
        )
    assert_short(
        result,
        f"APIWATCH_PORT={port}: port {port} on 127.0.0.1 is already in use",
        f"APIWATCH_PORT={port + 10}",
    )
    # No banner, no migrations, no first admin key: the database was never even created.
    assert "admin key" not in result.stderr
    assert not (tmp_path / "data" / "api_monitor.db").exists()


def test_traceback_only_at_debug(tmp_path: Path) -> None:
    port = free_port()
    env = {"DATABASE_URL": f"postgresql+asyncpg://app@127.0.0.1:{port}/app"}
    quiet = run_cli("db", "upgrade", cwd=tmp_path, env=env)
    loud = run_cli("db", "upgrade", cwd=tmp_path, env={**env, "APIWATCH_LOG_LEVEL": "DEBUG"})
    assert "Traceback" not in quiet.stderr
    assert loud.returncode == 2
    assert "Traceback" in loud.stderr
    assert "connection refused" in loud.stderr.strip().splitlines()[-2]
