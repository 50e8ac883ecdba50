"""API keys of a protected API: making them, hashing them, and the in-memory store the
middleware looks them up in on every request.

Only a key's SHA-256 hash is ever kept. The store is synchronous and in memory because
the middleware consults it on the request path; whoever owns the keys (apiwatch's database,
an environment variable in a user's app) fills it and replaces it when keys change.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

KEY_MARKER = "aw_"
PREFIX_LENGTH = 8

Scope = Literal["read", "admin"]


def generate_key() -> str:
    """A new key: "aw_" and 32 random bytes, URL-safe (43 characters, 256 bits)."""
    return KEY_MARKER + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The SHA-256 hex digest under which a key is stored and looked up.

    A fast unsalted hash is right here, unlike for passwords: keys are 256 random bits, so
    there is no dictionary to try and salting or stretching would add nothing but cost on
    every request.
    """
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


def key_prefix(key: str) -> str:
    """The first characters of a key, enough to tell keys apart in masked listings."""
    return key[:PREFIX_LENGTH]


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """What the middleware knows about a key. Limits of None mean the limiter's defaults."""

    id: int
    name: str
    scope: Scope
    active: bool
    prefix: str
    minute_limit: int | None = None
    hour_limit: int | None = None
    day_limit: int | None = None


class KeyStore(Protocol):
    """Where the middleware finds a key's record by its hash. Called on every request, so it
    must answer from memory, synchronously."""

    def get(self, key_hash: str) -> ApiKeyRecord | None: ...


class MemoryKeyStore:
    """A dict from key hash to record.

    Why this lookup does not leak the key through timing: the secret never meets a
    comparison. The presented key is hashed first (SHA-256 runs in time independent of the
    key's content) and the dict compares digests. How long a lookup takes can at most
    reveal how a guess's digest relates to stored digests, and a digest says nothing
    usable about its preimage, so an attacker cannot build a key up character by
    character the way a naive `presented == stored` comparison would allow.
    """

    def __init__(self, records: Mapping[str, ApiKeyRecord] | None = None) -> None:
        self._records: dict[str, ApiKeyRecord] = dict(records or {})

    def get(self, key_hash: str) -> ApiKeyRecord | None:
        return self._records.get(key_hash)

    def add(self, key_hash: str, record: ApiKeyRecord) -> None:
        self._records[key_hash] = record

    def remove(self, key_hash: str) -> bool:
        """Forget a key; True when it was there."""
        return self._records.pop(key_hash, None) is not None

    def replace_all(self, records: Mapping[str, ApiKeyRecord]) -> None:
        # One assignment, so a request never sees a half-filled store.
        self._records = dict(records)

    def __len__(self) -> int:
        return len(self._records)
