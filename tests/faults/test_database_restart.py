"""The database goes away under a real `apiwatch serve` (PostgreSQL behind a proxy the test
cuts): the `apiwatch_dependency_down` alert for the database reaches a channel while the
database is still away and is resolved after, and its row, unwritable during the outage, is
stored once the database is back; and a spill file left by a process killed
during the outage is replayed by the next process started on the same directory."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from apiwatch.simulator import Simulator
from apiwatch.storage.models import ConnectionAttempt
from tests.alerting.channels.receivers import HttpReceiver
from tests.faults.servers import ADMIN, CuttableProxy, ServeProcess
from tests.faults.test_database_outage import rows


async def trigger(client: httpx.AsyncClient) -> int:
    response = await client.post("/api/schedule/trigger", json={})
    assert response.status_code == 200, response.text
    return len(response.json()["results"])


def notifications(receiver: HttpReceiver) -> list[dict]:
    """(state, dependency) of each apiwatch_dependency_down alert the channel received."""
    out = []
    for request in receiver.at("/page"):
        for alert in request.json()["alerts"]:
            if alert["rule"] == "apiwatch_dependency_down":
                out.append({"state": alert["state"], **alert["labels"], "text": alert["message"]})
    return out


@pytest.mark.slow(26)
async def test_the_database_down_alert_reaches_a_channel_during_the_outage(
    postgres_behind_proxy: tuple[str, str, CuttableProxy],
    tmp_path: Path,
) -> None:
    via, _direct, proxy = postgres_behind_proxy
    receiver = HttpReceiver()
    await receiver.start()
    alerts = tmp_path / "alerts.yaml"
    # Critical alerts go to "pagerduty" by default: here a webhook to the receiver.
    alerts.write_text(
        "group_window_s: 0.2\n"
        f"channels:\n  pagerduty: {{kind: webhook, url: '{receiver.url('/page')}'}}\n"
    )
    async with Simulator(port=0) as sim:
        serve = ServeProcess(
            {
                "DATABASE_URL": via,
                "APIWATCH_UPSTREAM_OVERRIDE": sim.url,
                "APIWATCH_ALERTS_FILE": str(alerts),
                "APIWATCH_SPILL_DIR": str(tmp_path / "spill"),
            },
            tmp_path,
        )
        try:
            await serve.start()
            async with httpx.AsyncClient(
                base_url=serve.url, timeout=30, headers={"X-API-Key": ADMIN}
            ) as client:
                await trigger(client)
                proxy.cut()
                # Results keep coming, so the recorder keeps finding the database away;
                # it is declared away after 10 s of that (a brief lock is no outage).
                for _ in range(120):
                    await trigger(client)
                    if any(n["state"] == "firing" for n in notifications(receiver)):
                        break
                    await asyncio.sleep(0.25)
                firing = [n for n in notifications(receiver) if n["state"] == "firing"]
                assert [n["dependency"] for n in firing] == ["database"], notifications(receiver)
                assert "apiwatch: database unavailable" in firing[0]["text"]
                status = (await client.get("/api/status")).json()
                assert status["dependencies"]["database"]["ok"] is False  # still away

                proxy.restore()
                for _ in range(200):
                    await trigger(client)
                    if any(n["state"] == "resolved" for n in notifications(receiver)):
                        break
                    await asyncio.sleep(0.25)
                states = [(n["state"], n["dependency"]) for n in notifications(receiver)]
                assert states == [("firing", "database"), ("resolved", "database")], states
                # Its row could not be written while the database was away: it waited in
                # memory and is stored now, fired and resolved, as it was sent.
                stored: list[dict] = []
                for _ in range(100):
                    history = await client.get(
                        "/api/alerts/history", params={"rule": "apiwatch_dependency_down"}
                    )
                    assert history.status_code == 200, history.text
                    stored = history.json()["alerts"]
                    if stored and stored[0]["state"] == "resolved":
                        break
                    await asyncio.sleep(0.1)
                assert [(a["state"], a["labels"]["dependency"]) for a in stored] == [
                    ("resolved", "database")
                ], stored
                assert stored[0]["fired_at"] < stored[0]["resolved_at"]
        finally:
            serve.stop()
            await receiver.stop()


def spilled(directory: Path) -> dict[str, int]:
    """Complete rows on disk per table (a line cut by the kill is not a row)."""
    tables: dict[str, int] = {}
    for path in directory.glob("recorder-*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
            if line.endswith("\n"):
                table = json.loads(line)["t"]
                tables[table] = tables.get(table, 0) + 1
    return tables


async def test_a_spill_file_left_by_a_killed_process_is_replayed_at_the_next_start(
    postgres_behind_proxy: tuple[str, str, CuttableProxy],
    tmp_path: Path,
) -> None:
    via, direct, proxy = postgres_behind_proxy
    spill = tmp_path / "spill"
    async with Simulator(port=0) as sim:
        env = {
            "DATABASE_URL": via,
            "APIWATCH_UPSTREAM_OVERRIDE": sim.url,
            "APIWATCH_RECORDER_MAX_QUEUE": "100",  # the least: memory overflows into the file soon
            "APIWATCH_SPILL_DIR": str(spill),
        }
        first = ServeProcess(env, tmp_path)
        try:
            await first.start()
            async with httpx.AsyncClient(
                base_url=first.url, timeout=30, headers={"X-API-Key": ADMIN}
            ) as client:
                await trigger(client)
                await asyncio.sleep(0.5)  # written
                before = await rows(direct, ConnectionAttempt)
                assert before > 0
                proxy.cut()
                for _ in range(20):  # 12 results each: 100 in memory, the rest to the file
                    await trigger(client)
                await asyncio.sleep(0.5)  # the recorder pushes appended rows to the file
            first.kill()  # kill -9: what memory held is lost, the file stays
        finally:
            first.stop()
        left = spilled(spill)
        assert left.get("connection_attempts", 0) >= 50, left
        proxy.restore()

        second = ServeProcess(env, tmp_path)
        try:
            await second.start()
            for _ in range(300):
                if not list(spill.glob("recorder-*")):
                    break
                await asyncio.sleep(0.1)
            assert not list(spill.glob("recorder-*")), "the leftover file is removed once written"
        finally:
            second.stop()
    # Every complete row the dead process left on disk is in the database, once.
    assert await rows(direct, ConnectionAttempt) == before + left["connection_attempts"]
    log = (tmp_path / "serve.log").read_text()
    assert f"recorder replays {sum(left.values())} rows spilled by an earlier run" in log
