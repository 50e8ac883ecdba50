"""The live feed's per-connection outbox: what is dropped when a client falls behind, what
never is, and when the client is cut off instead."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

from apiwatch.domain import Status, StatusChange
from apiwatch.runtime.feed import LiveFeed
from apiwatch.runtime.feed_messages import NEW_LOG_ENTRY, PROVIDER_STATUS_CHANGE, message


async def _snapshot() -> dict[str, object]:
    return {"providers": []}


def _entry(n: int) -> object:
    return message(NEW_LOG_ENTRY, {"n": n}, provider="p")


def _change(n: int) -> object:
    return message(PROVIDER_STATUS_CHANGE, {"n": n}, provider="p")


async def test_a_full_outbox_drops_the_oldest_log_entries_and_reports_them_first() -> None:
    feed = LiveFeed(snapshot=_snapshot, queue_size=4)
    connection = feed.connect()
    for n in range(3):
        feed.deliver(_entry(n))
    feed.deliver(_change(100))
    for n in range(3, 6):
        feed.deliver(_entry(n))
    got = [json.loads(await connection.next()) for _ in range(5)]  # type: ignore[arg-type]
    assert got[0] == {**got[0], "type": "dropped", "data": {"count": 3, "total": 3}}
    assert [m["data"]["n"] for m in got[1:]] == [100, 3, 4, 5]


async def test_an_outbox_full_of_status_changes_cuts_the_client_off() -> None:
    feed = LiveFeed(snapshot=_snapshot, queue_size=3)
    connection = feed.connect()
    for n in range(4):
        feed.deliver(_change(n))
    assert connection.closed is not None and "too slow" in connection.closed
    assert connection not in feed.connections  # out of the fan-out at once
    assert await connection.next() is None


async def test_filters_narrow_by_type_and_provider_but_control_messages_always_pass() -> None:
    feed = LiveFeed(snapshot=_snapshot, queue_size=10)
    connection = feed.connect(types=[PROVIDER_STATUS_CHANGE], providers=["q"])
    feed.deliver(_change(1))  # provider p: filtered
    feed.deliver(message(PROVIDER_STATUS_CHANGE, {"n": 2}, provider="q"))
    feed.deliver(message(NEW_LOG_ENTRY, {"n": 3}, provider="q"))  # type filtered
    await feed.send_ping()
    got = [json.loads(await connection.next()) for _ in range(2)]  # type: ignore[arg-type]
    assert [(m["type"], m["data"].get("n")) for m in got] == [
        (PROVIDER_STATUS_CHANGE, 2),
        ("ping", None),
    ]
    assert len(connection) == 0


async def test_a_status_change_is_never_followed_by_a_snapshot_from_before_it() -> None:
    """A snapshot is reused for a second; one built before a status change and sent after
    it would put the old status back on the client's screen until the next snapshot."""
    status = {"p": "online"}

    async def snapshot() -> dict[str, object]:
        return {"providers": [{"id": "p", "status": status["p"]}]}

    feed = LiveFeed(snapshot=snapshot, queue_size=10, clock=lambda: 0.0)  # never expires
    connection = feed.connect()
    await feed.send_status()
    status["p"] = "offline"
    feed.observe(StatusChange("p", Status.ONLINE, Status.OFFLINE, "503", datetime.now(UTC)))
    await feed.send_status()
    status["p"] = "degraded"
    feed.deliver(message(PROVIDER_STATUS_CHANGE, {"to": "degraded"}, provider="p"))
    await feed.send_status()  # another process's change, through the relay
    got = [json.loads(await connection.next()) for _ in range(5)]  # type: ignore[arg-type]
    assert [(m["type"], m["data"].get("providers", [{}])[0].get("status")) for m in got] == [
        ("status_update", "online"),
        (PROVIDER_STATUS_CHANGE, None),
        ("status_update", "offline"),
        (PROVIDER_STATUS_CHANGE, None),
        ("status_update", "degraded"),
    ]
    await feed.send_status()  # without a change the snapshot is reused
    status["p"] = "unknown"
    await feed.send_status()
    later = [json.loads(await connection.next()) for _ in range(2)]  # type: ignore[arg-type]
    assert [m["data"]["providers"][0]["status"] for m in later] == ["degraded", "degraded"]


async def test_a_snapshot_built_across_a_change_is_sent_once_and_not_kept() -> None:
    """Were building a snapshot to wait (on the database, say), a change arriving meanwhile
    must not leave the snapshot from before it in the cache."""
    status = {"p": "online"}
    builds = []
    feed: LiveFeed

    async def snapshot() -> dict[str, object]:
        built = {"providers": [{"id": "p", "status": status["p"]}]}
        builds.append(built)
        await asyncio.sleep(0)
        if len(builds) == 1:  # the change lands while the first snapshot is being built
            status["p"] = "offline"
            change = StatusChange("p", Status.ONLINE, Status.OFFLINE, "503", datetime.now(UTC))
            feed.observe(change)
        return built

    feed = LiveFeed(snapshot=snapshot, queue_size=10, clock=lambda: 0.0)  # never expires
    sent = [json.loads((await feed.status_message(None)).text) for _ in range(3)]
    assert [m["data"]["providers"][0]["status"] for m in sent] == ["online", "offline", "offline"]
    assert len(builds) == 2  # the second is kept
