"""Keys: generated with enough entropy, stored only as a SHA-256 hash, listed by a prefix;
the in-memory store the middleware reads."""

from __future__ import annotations

import hashlib
import re

from apiwatch.inbound import ApiKeyRecord, MemoryKeyStore, generate_key, hash_key, key_prefix


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
