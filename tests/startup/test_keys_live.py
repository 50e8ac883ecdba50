"""Keys made or revoked with the CLI count on a server that is already running: a real
`apiwatch serve` process, the CLI as other processes, one SQLite database between them."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from apiwatch.inbound import MemoryKeyStore, hash_key
from apiwatch.runtime.access import AccessControl
from apiwatch.storage.db import create_engine, create_sessionmaker
from apiwatch.storage.migrate import upgrade
from tests.startup.support import clean_env, free_port, run_cli, wait_healthy

ADMIN = "aw_live-admin-key-for-the-keys-test-0000000"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    port = free_port()
    env = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/live.db",
        "APIWATCH_PORT": str(port),
        "APIWATCH_ADMIN_KEY": ADMIN,
        # No scheduler: no periodic key sync could explain what the test sees, and nothing
        # is probed (the override points at a closed loopback port anyway).
        "APIWATCH_SCHEDULER_ENABLED": "false",
        "APIWATCH_UPSTREAM_OVERRIDE": "http://127.0.0.1:9",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "apiwatch.cli", "serve"],
        cwd=tmp_path,
        env=clean_env(**env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(process, url)
        yield url, env
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_created_key_works_at_once_and_revoked_key_stops_within_a_second(
    server: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    url, env = server
    created = run_cli("keys", "create", "--name", "newcomer", cwd=tmp_path, env=env)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    key_id = re.search(r"created key (\d+)", created.stderr)
    assert key_id, created.stderr
    response = httpx.get(f"{url}/api/providers", headers={"X-API-Key": key}, timeout=10)
    assert response.status_code == 200, response.text

    revoked = run_cli("keys", "revoke", key_id.group(1), cwd=tmp_path, env=env)
    assert revoked.returncode == 0, revoked.stderr
    assert key not in revoked.stderr + revoked.stdout
    done = time.monotonic()
    while True:
        status = httpx.get(f"{url}/api/providers", headers={"X-API-Key": key}).status_code
        if status == 403:
            break
        assert status == 200
        assert time.monotonic() - done < 1.5, "the revoked key still works"
        time.sleep(0.05)
    # The admin key is unaffected.
    assert httpx.get(f"{url}/api/keys", headers={"X-API-Key": ADMIN}).status_code == 200
    missing = run_cli("keys", "revoke", "999999", cwd=tmp_path, env=env)
    assert missing.returncode == 1 and "no key with id 999999" in missing.stderr


async def test_a_remembered_miss_cannot_lock_a_real_key_out(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/keys.db"
    await upgrade(url)
    engine = create_engine(url)
    try:
        sessions = create_sessionmaker(engine)
        now = [0.0]
        server_store = MemoryKeyStore(clock=lambda: now[0], max_misses=50)
        AccessControl(sessions=sessions, store=server_store, record=lambda row: None)
        cli = AccessControl(sessions=sessions, store=MemoryKeyStore(), record=lambda row: None)
        key = "aw_presented-before-it-existed-000000000"
        # Someone presents the key before it exists, and floods the misses besides.
        assert await server_store.lookup(hash_key(key)) is None
        for n in range(server_store.max_misses + 5):
            await server_store.lookup(hash_key(f"aw_guess-{n}"))
        await cli.create(name="real", scope="read", key=key)
        now[0] += 1.0  # recheck_s: a miss is remembered no longer than this
        found = await server_store.lookup(hash_key(key))
        assert found is not None and found.active and found.name == "real"
    finally:
        await engine.dispose()
