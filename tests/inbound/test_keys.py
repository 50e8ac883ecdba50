"""Keys: generated with enough entropy, stored only as a SHA-256 hash, listed by a prefix;
the in-memory store the middleware reads."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time

import pytest

from apiwatch.inbound import (
    ApiKeyRecord,
    KeyLookupUnavailable,
    MemoryKeyStore,
    generate_key,
    hash_key,
    key_prefix,
)


def record(key_id: int, *, active: bool = True) -> ApiKeyRecord:
    return ApiKeyRecord(key_id, f"key {key_id}", "read", active, "aw_xxxxx")


def test_generated_keys_are_marked_random_and_url_safe() -> None:
    keys = {generate_key() for _ in range(200)}
    assert len(keys) == 200
    for key in keys:
        assert re.fullmatch(r"aw_[A-Za-z0-9_-]{43}", key), key


def test_hash_is_the_sha256_hex_digest_and_differs_from_the_key() -> None:
    key = generate_key()
    digest = hash_key(key)
    assert digest == hashlib.sha256(key.encode()).hexdigest()
    assert len(digest) == 64 and key not in digest


def test_prefix_is_the_first_eight_characters() -> None:
    assert key_prefix("aw_AbCdEfGhIjK") == "aw_AbCdE"


def test_store_finds_a_key_by_its_hash_only() -> None:
    key = generate_key()
    store = MemoryKeyStore({hash_key(key): record(1)})
    assert store.get(hash_key(key)) == record(1)
    assert store.get(key) is None
    assert store.get(hash_key(key + "x")) is None


def test_store_add_remove_and_replace_all() -> None:
    store = MemoryKeyStore()
    store.add("h1", record(1))
    store.add("h2", record(2))
    assert len(store) == 2
    assert store.remove("h1") is True
    assert store.remove("h1") is False
    store.replace_all({"h3": record(3, active=False)})
    assert store.get("h2") is None
    assert store.get("h3") == record(3, active=False)
    assert len(store) == 1


class Database:
    """A resolver standing in for the database: answers from `rows`, or hangs (never
    answers) or fails while told to; counts the queries it was asked."""

    def __init__(self, rows: dict[str, ApiKeyRecord]) -> None:
        self.rows = rows
        self.queries = 0
        self.hung = False
        self.down = False

    async def __call__(self, key_hash: str) -> ApiKeyRecord | None:
        self.queries += 1
        if self.hung:
            await asyncio.Event().wait()
        if self.down:
            raise ConnectionRefusedError("database down")
        return self.rows.get(key_hash)


async def test_a_hung_resolver_costs_at_most_the_lookup_timeout() -> None:
    now = [0.0]
    database = Database({"known": record(1)})
    store = MemoryKeyStore(
        resolver=database, recheck_s=1.0, lookup_timeout_s=0.2, clock=lambda: now[0]
    )
    assert await store.lookup("known") == record(1)
    database.hung = True
    now[0] += 1.5  # the known key is due for a re-check
    started = time.monotonic()
    assert await store.lookup("known") == record(1)  # kept working
    assert 0.15 < time.monotonic() - started < 1.0
    with pytest.raises(KeyLookupUnavailable):  # within a second of the failure: no query
        await store.lookup("new")
    assert database.queries == 2
    now[0] += 1.5
    started = time.monotonic()
    with pytest.raises(KeyLookupUnavailable):  # unknown and unanswerable: not a miss
        await store.lookup("new")
    assert time.monotonic() - started < 1.0
    assert database.queries == 3

    database.hung, database.down = False, True
    now[0] += 1.5
    with pytest.raises(KeyLookupUnavailable):
        await store.lookup("new")
    database.down = False
    database.rows["new"] = record(2)
    now[0] += 1.5
    assert await store.lookup("new") == record(2)  # the database answers again
    assert await store.lookup("wrong") is None


async def test_a_failing_resolver_is_logged_once_a_minute_not_per_lookup(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    database = Database({})
    database.down = True
    store = MemoryKeyStore(resolver=database, recheck_s=1.0, clock=lambda: now[0])
    caplog.set_level(logging.WARNING, logger="apiwatch.inbound.keys")
    for _ in range(90):  # a lookup a second for a minute and a half, the database away
        with pytest.raises(KeyLookupUnavailable):
            await store.lookup("unknown")
        now[0] += 1.0
    ours = [r for r in caplog.records if "api_key_lookup_failed" in r.getMessage()]
    lines = [r.getMessage() for r in ours]
    assert database.queries == 90
    assert len(lines) == 2, lines
    assert lines[0].startswith("api_key_lookup_failed (1 times")
    assert lines[1].startswith("api_key_lookup_failed (60 times")
    assert all(not r.exc_info for r in ours)  # no traceback below DEBUG
