"""`apiwatch serve --role`: a worker process serves only `/healthz` and `/metrics` over HTTP
(it probes; the API process answers everything else), and a split role without Redis is a
configuration error named in one line, exit status 2, before anything starts."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from apiwatch.simulator import Simulator
from tests.cluster.processes import (
    ADMIN_KEY,
    delete_cluster_keys,
    migrate,
    start_serving,
    stop_all,
    worker_env,
)
from tests.startup.support import run_cli


@pytest.mark.parametrize("role", ["worker", "api"])
def test_a_split_role_without_redis_names_the_missing_setting(role: str, tmp_path: Path) -> None:
    done = run_cli(
        "serve",
        "--role",
        role,
        cwd=tmp_path,
        env={"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'a.db'}"},
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"--role {role} needs REDIS_URL" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "a.db").exists()  # refused before migrations or a first key


@pytest.mark.postgres
async def test_a_worker_serves_only_healthz_and_metrics(
    _postgres_database: str, redis_client: object, redis_prefix: str
) -> None:
    database_url = _postgres_database
    test_prefix = f"{redis_prefix}aw:"
    migrate(database_url)
    sim = Simulator()
    await sim.start()
    env = worker_env(database_url, sim.url, "w0", test_prefix)
    worker = None
    try:
        worker, url = await start_serving(env, role="worker")
        headers = {"X-API-Key": ADMIN_KEY}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as client:
            assert (await client.get("/healthz")).status_code == 200
            metrics = await client.get("/metrics")
            assert metrics.status_code == 200
            assert "apiwatch_" in metrics.text
            for path in ("/api/status", "/api/providers", "/api/cluster", "/", "/status"):
                answer = await client.get(path)
                assert answer.status_code == 404, (path, answer.status_code, answer.text[:200])
    finally:
        stop_all({"w0": worker} if worker is not None else {})
        await sim.stop()
        await delete_cluster_keys(redis_client, test_prefix)
