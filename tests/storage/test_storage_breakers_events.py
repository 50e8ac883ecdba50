"""Breaker state and events against real databases: save/load/upsert of `circuit_breakers`,
and `events` written through the recorder and listed with filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from apiwatch.storage.recorder import Recorder
from apiwatch.storage.repositories.breakers import load_breakers, save_breakers
from apiwatch.storage.repositories.events import list_events

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


SNAPSHOT = {
    "binance": {
        "state": "open",
        "consecutive_failures": 5,
        "opened_at": 1_735_689_600.25,
        "retry_at": 1_735_689_660.25,
        "trial_started_at": None,  # extra keys are ignored
    },
    "coingecko": {
        "state": "closed",
        "consecutive_failures": 0,
        "opened_at": None,
        "retry_at": None,
    },
    "etherscan": {
        "state": "half_open",
        "consecutive_failures": 3,
        "opened_at": 1_735_689_000.0,
        "retry_at": 1_735_689_030.0,
    },
}


def expected(snapshot: dict[str, dict]) -> dict[str, dict]:
    keys = ("state", "consecutive_failures", "opened_at", "retry_at")
    return {provider: {key: entry[key] for key in keys} for provider, entry in snapshot.items()}


async def test_load_breakers_is_empty_at_first(db_sessionmaker):
    async with db_sessionmaker() as session:
        assert await load_breakers(session) == {}


async def test_save_and_load_breakers_round_trip(db_sessionmaker):
    async with db_sessionmaker() as session:
        await save_breakers(session, snapshot=SNAPSHOT)
    async with db_sessionmaker() as session:
        loaded = await load_breakers(session)
    assert loaded == expected(SNAPSHOT)
    assert list(loaded) == sorted(SNAPSHOT)


async def test_save_breakers_overwrites_and_keeps_missing_providers(db_sessionmaker):
    async with db_sessionmaker() as session:
        await save_breakers(session, snapshot=SNAPSHOT)
    update = {
        "binance": {"state": "closed", "consecutive_failures": 0, "opened_at": None},
        "kraken": {"state": "open", "consecutive_failures": 7, "opened_at": 10, "retry_at": 70},
    }
    async with db_sessionmaker() as session:
        await save_breakers(session, snapshot=update)
    async with db_sessionmaker() as session:
        loaded = await load_breakers(session)
    assert loaded["binance"] == {
        "state": "closed",
        "consecutive_failures": 0,
        "opened_at": None,
        "retry_at": None,
    }
    assert loaded["kraken"] == {
        "state": "open",
        "consecutive_failures": 7,
        "opened_at": 10.0,
        "retry_at": 70.0,
    }
    # Not in the second snapshot: untouched.
    assert loaded["coingecko"] == expected(SNAPSHOT)["coingecko"]
    assert loaded["etherscan"] == expected(SNAPSHOT)["etherscan"]
    assert len(loaded) == 4


async def test_save_breakers_accepts_an_empty_snapshot(db_sessionmaker):
    async with db_sessionmaker() as session:
        await save_breakers(session, snapshot={})
        assert await load_breakers(session) == {}


async def test_save_breakers_refuses_an_unknown_state(db_sessionmaker):
    async with db_sessionmaker() as session:
        with pytest.raises(ValueError, match="unknown state"):
            await save_breakers(session, snapshot={"binance": {"state": "ajar"}})
        assert await load_breakers(session) == {}


EVENTS = [
    ("rate_limit_warning", "binance", {"window": "minute", "used": 1100, "limit": 1200}, 0),
    ("key_expired", "etherscan", {"key_label": "primary"}, 1),
    ("breaker_transition", "binance", {"old": "closed", "new": "open"}, 2),
    ("rate_limit_warning", "coingecko", {"window": "day", "used": 9, "limit": 10}, 3),
    ("breaker_transition", "binance", {"old": "open", "new": "half_open"}, 4),
    ("rate_limit_warning", None, {"note": "global"}, 5),
]


async def record_events(db_sessionmaker) -> Recorder:
    recorder = Recorder(db_sessionmaker, batch_size=100, flush_interval_s=0.05)
    await recorder.start()
    for kind, provider, data, minute in EVENTS:
        recorder.record(
            ("events", {"kind": kind, "provider": provider, "data": data, "at": at(minute)})
        )
    await recorder.stop()
    assert recorder.written == len(EVENTS)
    assert recorder.rejected == 0
    return recorder


async def test_events_recorded_as_tuples_are_listed_newest_first(db_sessionmaker):
    await record_events(db_sessionmaker)
    async with db_sessionmaker() as session:
        events = await list_events(session)
    assert [(e["kind"], e["provider"], e["data"], e["at"]) for e in events] == [
        (kind, provider, data, at(minute)) for kind, provider, data, minute in reversed(EVENTS)
    ]
    assert all(e["at"].tzinfo is not None for e in events)
    assert set(events[0]) == {"id", "kind", "provider", "data", "at"}


async def test_list_events_filters(db_sessionmaker):
    await record_events(db_sessionmaker)
    async with db_sessionmaker() as session:
        by_kind = await list_events(session, kind="rate_limit_warning")
        by_provider = await list_events(session, provider="binance")
        both = await list_events(session, kind="breaker_transition", provider="binance")
        since = await list_events(session, since=at(3))
        combined = await list_events(session, provider="binance", since=at(1))
        limited = await list_events(session, limit=2)
        none = await list_events(session, kind="key_expired", provider="binance")

    assert [e["at"] for e in by_kind] == [at(5), at(3), at(0)]
    assert [e["at"] for e in by_provider] == [at(4), at(2), at(0)]
    assert [e["data"]["new"] for e in both] == ["half_open", "open"]
    assert [e["at"] for e in since] == [at(5), at(4), at(3)]  # since is inclusive
    assert [e["at"] for e in combined] == [at(4), at(2)]
    assert [e["at"] for e in limited] == [at(5), at(4)]
    assert none == []


async def test_events_in_the_same_instant_come_newest_id_first(db_sessionmaker):
    recorder = Recorder(db_sessionmaker)
    for i in range(3):
        recorder.record(("events", {"kind": "key_expired", "data": {"i": i}, "at": at(0)}))
    assert await recorder.flush()
    async with db_sessionmaker() as session:
        events = await list_events(session)
    assert [e["data"] for e in events] == [{"i": 2}, {"i": 1}, {"i": 0}]
    assert [e["provider"] for e in events] == [None, None, None]


async def test_an_event_without_data_stores_an_empty_dict(db_sessionmaker):
    recorder = Recorder(db_sessionmaker)
    recorder.record(("events", {"kind": "key_expired", "provider": "etherscan", "at": at(0)}))
    assert await recorder.flush()
    async with db_sessionmaker() as session:
        [event] = await list_events(session)
    assert event["data"] == {}


def test_recording_an_unknown_event_column_raises_at_once(db_sessionmaker):
    recorder = Recorder(db_sessionmaker)
    with pytest.raises(ValueError, match="unknown columns"):
        recorder.record(("events", {"kind": "x", "at": at(0), "payload": {}}))
    assert recorder.pending == 0
