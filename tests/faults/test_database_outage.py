"""PostgreSQL goes away under load (a proxy the test cuts between apiwatch and the shared
server): no probe result is lost (memory, then the spill file, then written back in order),
refused requests are counted, not queued row by row, status and providers answer from
memory, other reads say 503, and everything drains once the database is back."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from apiwatch.simulator import Simulator
from apiwatch.storage.db import create_engine
from apiwatch.storage.models import ApiUsage, ConnectionAttempt
from tests.faults.servers import ADMIN, CuttableProxy, ServeProcess


async def rows(url: str, model: type) -> int:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return int((await connection.execute(select(func.count(model.id)))).scalar_one())
    finally:
        await engine.dispose()


async def refused_rows(url: str) -> int:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            query = select(func.count(ApiUsage.id)).where(ApiUsage.authorized.is_(False))
            return int((await connection.execute(query)).scalar_one())
    finally:
        await engine.dispose()


@pytest.mark.slow(27)
async def test_a_database_outage_under_load_loses_no_probe_result(
    postgres_behind_proxy: tuple[str, str, CuttableProxy], tmp_path: Path
) -> None:
    via, direct, proxy = postgres_behind_proxy
    spill = tmp_path / "spill"
    sent = 0
    async with Simulator(port=0) as sim:
        env = {
            "DATABASE_URL": via,
            "APIWATCH_UPSTREAM_OVERRIDE": sim.url,
            "APIWATCH_RECORDER_MAX_QUEUE": "100",  # so a short outage overflows memory
            "APIWATCH_SPILL_DIR": str(spill),
        }
        serve = ServeProcess(env, tmp_path)
        try:
            await serve.start()
            async with (
                httpx.AsyncClient(
                    base_url=serve.url, timeout=30, headers={"X-API-Key": ADMIN}
                ) as client,
                httpx.AsyncClient(
                    base_url=serve.url, timeout=30, headers={"X-API-Key": "aw_bad"}
                ) as stranger,
            ):

                async def trigger_all() -> None:
                    nonlocal sent
                    response = await client.post("/api/schedule/trigger", json={})
                    assert response.status_code == 200, response.text
                    sent += len(response.json()["results"])

                await trigger_all()
                await asyncio.sleep(0.5)
                proxy.cut()
                for _ in range(25):
                    await trigger_all()
                    for _ in range(20):  # unknown keys during the outage cannot be checked
                        refused = await stranger.get("/api/providers")
                        assert refused.status_code == 503, refused.text
                        assert "cannot be checked" in refused.json()["detail"]
                assert sent > 200
                assert list(spill.glob("recorder-*.jsonl")), "memory overflowed into the file"

                # Declared away after 10 s of failures (a brief SQLite lock is no outage).
                for _ in range(150):
                    status = await client.get("/api/status")
                    assert status.status_code == 200, status.text
                    body = status.json()
                    if body["state"] == "degraded":
                        break
                    await asyncio.sleep(0.1)
                assert body["state"] == "degraded"
                assert body["dependencies"]["database"]["ok"] is False
                providers = await client.get("/api/providers")
                assert providers.status_code == 200, providers.text
                logs = await client.get("/api/logs")
                assert logs.status_code == 503, logs.text
                assert "database is unavailable" in logs.json()["detail"]

                proxy.restore()
                for _ in range(600):
                    health = (await client.get("/healthz")).json()
                    if health["status"] == "ok" and not list(spill.glob("recorder-*.jsonl")):
                        break
                    await asyncio.sleep(0.1)
                assert health == {"status": "ok", "reasons": []}, health
                assert not list(spill.glob("recorder-*.jsonl")), "removed once written back"
            await asyncio.sleep(0.5)
            serve.kill()
        finally:
            serve.stop()
    assert await rows(direct, ConnectionAttempt) == sent  # every result, none dropped
    # The 500 refusals were counted in memory (rows per minute, status and /24, written by
    # the key-sync job or at a clean stop), not queued as 500 usage rows.
    assert await refused_rows(direct) == 0


async def test_a_hung_database_does_not_stall_keyed_requests(
    postgres_behind_proxy: tuple[str, str, CuttableProxy], tmp_path: Path
) -> None:
    """Every byte to and from PostgreSQL held (a hung server, not a refused one): a known
    key is re-checked against the database once a second, and an unknown key is looked up
    there. Neither may make a request wait more than the lookup's short timeout."""
    via, _, proxy = postgres_behind_proxy
    serve = ServeProcess({"DATABASE_URL": via}, tmp_path)
    try:
        await serve.start()
        async with httpx.AsyncClient(base_url=serve.url, timeout=30) as client:
            admin = {"X-API-Key": ADMIN}
            assert (await client.get("/api/status", headers=admin)).status_code == 200
            proxy.pause()
            await asyncio.sleep(1.5)  # past the 1 s recheck: the next request asks the database
            for attempt in range(3):
                started = time.monotonic()
                known = await client.get("/api/status", headers=admin)
                took = time.monotonic() - started
                assert known.status_code == 200, known.text
                # The first waits for the 2 s lookup timeout, later ones not at all.
                assert took < (3.5 if attempt == 0 else 0.5), (attempt, took)
            await asyncio.sleep(1.5)
            started = time.monotonic()
            unknown = await client.get("/api/status", headers={"X-API-Key": "aw_unknown"})
            took = time.monotonic() - started
            assert unknown.status_code == 503, unknown.text
            assert unknown.headers["retry-after"] == "1"
            assert "cannot be checked" in unknown.json()["detail"]
            assert took < 3.5, took

            proxy.resume()
            for _ in range(100):  # once the database answers, the unknown key is refused
                again = await client.get("/api/status", headers={"X-API-Key": "aw_unknown"})
                if again.status_code == 401:
                    break
                await asyncio.sleep(0.1)
            assert again.status_code == 401, again.text
    finally:
        proxy.resume()
        serve.stop()
