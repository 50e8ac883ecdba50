"""API keys of a protected API: making them, hashing them, and the in-memory store the
middleware looks them up in on every request.

Only a key's SHA-256 hash is ever kept. The store is in memory because the middleware
consults it on the request path; whoever owns the keys (apiwatch's database, an environment
variable in a user's app) fills it and replaces it when keys change. With a `resolver` (the
database, for apiwatch) a miss is looked up there, so a key made by another process works
at once, and a known key is re-read at most every `recheck_s`, so a revocation made
elsewhere takes effect within that time. Misses are remembered for `recheck_s` too (at most
`MAX_MISSES` of them): a flood of wrong keys cannot cost a query each, and since a miss
expires, no one can lock a real key out by presenting it before it exists. (A real key
created in this process, or found by a lookup, also leaves the misses at once.)

A lookup waits at most `lookup_timeout_s`: a hung database must not stall the request path.
When a lookup fails or times out, known keys keep working and unknown ones are answered
with `KeyLookupUnavailable` (the middleware's 503), and for `recheck_s` after the failure no
lookup is tried, so a hung database costs one wait of at most `lookup_timeout_s` per
`recheck_s` and key, not one per request.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Literal, Protocol

log = logging.getLogger(__name__)
FAILURE_LOG_EVERY_S = 60.0

KEY_MARKER = "aw_"
MAX_MISSES = 10_000
LOOKUP_TIMEOUT_S = 2.0
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
    """Where the middleware finds a key's record by its hash. Called on every request, so
    it answers from memory, and goes further (a database) only on a miss or a stale hit."""

    def get(self, key_hash: str) -> ApiKeyRecord | None: ...

    async def lookup(self, key_hash: str) -> ApiKeyRecord | None: ...


Resolver = Callable[[str], Awaitable[ApiKeyRecord | None]]


class KeyLookupUnavailable(Exception):
    """The key is not in memory and the resolver cannot say whether it exists (it failed,
    or gave no answer within `lookup_timeout_s`)."""


class MemoryKeyStore:
    """A dict from key hash to record, optionally backed by a `resolver`.

    Why this lookup does not leak the key through timing: the secret never meets a
    comparison. The presented key is hashed first (SHA-256 runs in time independent of the
    key's content) and the dict compares digests. How long a lookup takes can at most
    reveal how a guess's digest relates to stored digests, and a digest says nothing
    usable about its preimage, so an attacker cannot build a key up character by
    character the way a naive `presented == stored` comparison would allow.
    """

    def __init__(
        self,
        records: Mapping[str, ApiKeyRecord] | None = None,
        *,
        resolver: Resolver | None = None,
        recheck_s: float = 1.0,
        max_misses: int = MAX_MISSES,
        lookup_timeout_s: float = LOOKUP_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._records: dict[str, ApiKeyRecord] = dict(records or {})
        self._clock = clock
        self._checked: dict[str, float] = dict.fromkeys(self._records, clock())
        self._misses: dict[str, float] = {}
        self._pending: dict[str, asyncio.Future[ApiKeyRecord | None]] = {}
        self._failed_at = float("-inf")
        self._failure_logged_at = float("-inf")
        self._lookup_failures = 0
        self.resolver = resolver
        self.recheck_s = recheck_s
        self.max_misses = max_misses
        self.lookup_timeout_s = lookup_timeout_s

    def get(self, key_hash: str) -> ApiKeyRecord | None:
        return self._records.get(key_hash)

    async def lookup(self, key_hash: str) -> ApiKeyRecord | None:
        """The key's record: from memory, or from the resolver on a miss or a stale hit.

        Raises `KeyLookupUnavailable` for a key not in memory while the resolver fails."""
        record = self._records.get(key_hash)
        if self.resolver is None:
            return record
        now = self._clock()
        if record is not None:
            if now - self._checked.get(key_hash, now) < self.recheck_s:
                return record
        elif now - self._misses.get(key_hash, float("-inf")) < self.recheck_s:
            return None
        if now - self._failed_at < self.recheck_s:  # the resolver failed a moment ago
            return self._unresolved(record)
        pending = self._pending.get(key_hash)
        if pending is None:  # one query per key however many requests wait for it
            pending = asyncio.ensure_future(self._resolve(key_hash, now))
            self._pending[key_hash] = pending
            pending.add_done_callback(partial(self._finished, key_hash))
        # The query goes on in its own task: a request waits for it at most
        # `lookup_timeout_s`, even when cancelling a query on a hung connection would
        # itself hang.
        done, _ = await asyncio.wait([pending], timeout=self.lookup_timeout_s)
        if not done:
            log.warning("api_key_lookup_timed_out after %.1f s", self.lookup_timeout_s)
            self._failed_at = self._clock()
            pending.cancel()
            return self._unresolved(record)
        if pending.cancelled() or pending.exception() is not None:
            return self._unresolved(record)
        return pending.result()

    def _finished(self, key_hash: str, task: asyncio.Future[ApiKeyRecord | None]) -> None:
        if self._pending.get(key_hash) is task:
            del self._pending[key_hash]
        if not task.cancelled():
            task.exception()  # logged in _resolve; read here so asyncio does not warn again

    async def _resolve(self, key_hash: str, now: float) -> ApiKeyRecord | None:
        assert self.resolver is not None
        try:
            fresh = await self.resolver(key_hash)
        except Exception as error:
            # Once, then once a minute with how many more: while the database is away every
            # unknown or stale key fails here, and a traceback each time said nothing new.
            self._failed_at = failed_at = self._clock()
            self._lookup_failures += 1
            if failed_at - self._failure_logged_at >= FAILURE_LOG_EVERY_S:
                self._failure_logged_at = failed_at
                log.warning(
                    "api_key_lookup_failed (%d times since the last such line): %s",
                    self._lookup_failures,
                    repr(error)[:300],
                    exc_info=log.isEnabledFor(logging.DEBUG),
                )
                self._lookup_failures = 0
            raise
        self._remember(key_hash, fresh, now)
        return fresh

    def _unresolved(self, record: ApiKeyRecord | None) -> ApiKeyRecord | None:
        # The database is away: known keys keep working, unknown ones cannot be decided.
        if record is None:
            raise KeyLookupUnavailable("API keys cannot be checked right now")
        return record

    def _remember(self, key_hash: str, record: ApiKeyRecord | None, now: float) -> None:
        if record is None:
            self._records.pop(key_hash, None)
            self._checked.pop(key_hash, None)
            if len(self._misses) >= self.max_misses:
                self._misses.clear()  # forgetting misses only costs queries
            self._misses[key_hash] = now
        else:
            self._records[key_hash] = record
            self._checked[key_hash] = now
            self._misses.pop(key_hash, None)

    def add(self, key_hash: str, record: ApiKeyRecord) -> None:
        self._remember(key_hash, record, self._clock())

    def remove(self, key_hash: str) -> bool:
        """Forget a key; True when it was there."""
        self._checked.pop(key_hash, None)
        return self._records.pop(key_hash, None) is not None

    def replace_all(self, records: Mapping[str, ApiKeyRecord]) -> None:
        # One assignment, so a request never sees a half-filled store.
        now = self._clock()
        self._records = dict(records)
        self._checked = dict.fromkeys(self._records, now)
        self._misses = {}

    def __len__(self) -> int:
        return len(self._records)
