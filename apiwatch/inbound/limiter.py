"""Per-key request limits over three windows (minute, hour, day) on the `limits` library's
storage: in process memory by default, shared through Redis across processes.

Choices, and why:
- Fixed windows aligned to the clock (a minute window starts at :00, the day at 00:00 UTC),
  with the window's start in the storage key. The reset time is then known without asking
  the storage (one round trip less per window with Redis), and tests can move an injected
  clock across a window boundary. The price of fixed windows: a client can send a full
  minute's quota at :59 and again at :00; the hour and day windows still bound it.
- A refused request uses no quota in any window. Otherwise a client refused by its minute
  window would burn its hour and day quotas while it retries.
- In memory each window is incremented with the storage's `incr` and all three are refunded
  when one is over; nothing interleaves there, since the storage never suspends between them.
  The `limits` memory storage sweeps all its keys for expiry about once per event-loop
  iteration, so its cost grows with the number of live keys (three per active API key, one
  per address with failed attempts this minute); with many keys, use Redis.
- With Redis, one Lua script (registered on the `limits` storage's own connection, on keys
  under its prefix) checks all three windows and increments them only when all have room,
  atomically across processes. A redis-py command costs ~90 µs of CPU, more than the rest
  of a request, so the hits that arrive while a script call is on its way are queued and
  sent together as the next call: one command per batch, not per request. Within a batch
  the hits of one key are applied in arrival order, as if sent one by one, so the limits
  stay exact.
- `X-RateLimit-*-Reset` is the number of seconds until the window resets (as in the IETF
  RateLimit header draft), not an epoch: it does not depend on the client's clock.
  `WindowState.reset_epoch` has the absolute time for callers that want it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from limits.aio.storage import MemoryStorage
from limits.storage import storage_from_string

WINDOWS: tuple[tuple[str, int], ...] = (("minute", 60), ("hour", 3600), ("day", 86400))
WINDOW_NAMES = tuple(name for name, _ in WINDOWS)
# Most groups (distinct key and limits) one script call takes; the rest wait for the next.
MAX_BATCH = 256

# A batch of hits. Per group of hits on one key: KEYS has its three window keys, ARGV has
# the number of hits, the three limits and the three key lifetimes. A group admits as many
# of its hits as every window has room for, in order. Returns per group: admitted, then
# the three counts before the batch.
BATCH_LUA = """
local out = {}
for g = 0, #KEYS / 3 - 1 do
  local a = g * 7
  local admitted = tonumber(ARGV[a + 1])
  local counts = {}
  for w = 1, 3 do
    local count = tonumber(redis.call('GET', KEYS[g * 3 + w]) or '0')
    counts[w] = count
    local room = tonumber(ARGV[a + 1 + w]) - count
    if room < admitted then admitted = room end
  end
  if admitted < 0 then admitted = 0 end
  if admitted > 0 then
    for w = 1, 3 do
      local key = KEYS[g * 3 + w]
      if redis.call('INCRBY', key, admitted) == admitted then
        redis.call('EXPIRE', key, ARGV[a + 4 + w])
      end
    end
  end
  out[#out + 1] = admitted
  for w = 1, 3 do out[#out + 1] = counts[w] end
end
return out
"""


class WindowState(NamedTuple):
    """One window after a request: its limit, what is left, and when it resets (epoch s)."""

    limit: int
    remaining: int
    reset_epoch: int


class LimitDecision(NamedTuple):
    """The outcome of one request against a key's three windows.

    `exceeded` names the refusing window; when several are full it is the one that resets
    last, so that after `retry_after_s` the request can succeed. `now` is the second the
    decision was made in, from which the headers' reset delays are counted.
    """

    allowed: bool
    exceeded: str | None
    retry_after_s: int
    minute: WindowState
    hour: WindowState
    day: WindowState
    now: int

    def window(self, name: str) -> WindowState:
        return getattr(self, name)  # type: ignore[no-any-return]


Counts = tuple[int, int, int]


def _async_uri(storage_uri: str) -> str:
    return storage_uri if storage_uri.startswith("async+") else f"async+{storage_uri}"


class InboundLimiter:
    """Counts requests per key in minute, hour and day windows.

    `storage_uri`: "memory://" (this process only) or a Redis URL ("redis://host:6379/0",
    "rediss://…", or the `limits` spelling "async+redis://…"), shared by every process that
    uses the same server and `key_prefix` (Redis Cluster is not supported: one script call
    touches many keys). `defaults` are the (minute, hour, day) limits of a key without its
    own. `clock` returns epoch seconds; tests pass their own.
    """

    def __init__(
        self,
        storage_uri: str = "memory://",
        *,
        defaults: tuple[int, int, int] = (100, 1000, 10000),
        key_prefix: str = "apiwatch-inbound",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(defaults) != 3 or any(limit < 0 for limit in defaults):
            raise ValueError("defaults must be three limits >= 0: (minute, hour, day)")
        self.defaults: tuple[int, int, int] = (defaults[0], defaults[1], defaults[2])
        self._clock = clock
        uri = _async_uri(storage_uri)
        scheme = uri.split("://", 1)[0]
        self.storage: Any
        self._script: Any = None
        if scheme == "async+memory":
            self.storage = storage_from_string(uri)
            # Process-local: the prefix only keeps several limiters' keys apart.
            self._prefix = f"{key_prefix}:"
        elif scheme in ("async+redis", "async+rediss", "async+redis+unix"):
            # coredis (limits' default client) is not a dependency; redis-py is.
            self.storage = storage_from_string(uri, implementation="redispy", key_prefix=key_prefix)
            self._prefix = ""
            self._script = self.storage.bridge.get_connection().register_script(BATCH_LUA)
        else:
            # Name the scheme only: the URI may carry a password.
            raise ValueError(f"unsupported limiter storage scheme {scheme!r}: use memory or redis")
        self.shared = self._script is not None
        # Window starts, resets and key lifetimes depend only on the second: kept for it.
        self._second = -1
        self._windows: tuple[Counts, Counts, Counts] = ((0, 0, 0),) * 3
        # Each key's three window keys for the current second: formatting them per request
        # costs more than a dict lookup.
        self._window_keys: dict[str | int, tuple[str, str, str]] = {}
        # Redis batching: hits waiting for the next script call, per (keys, limits).
        self._pending: dict[tuple[tuple[str, ...], Counts], tuple[Counts, list[Any]]] = {}
        self._flusher: asyncio.Task[None] | None = None
        # Script calls made and hits they carried (the mean batch size is their ratio).
        self.script_calls = 0
        self.script_hits = 0

    # -- keys ------------------------------------------------------------------------------

    def _storage_key(self, key: str) -> str:
        # For the `limits` storage's own methods, which prefix Redis keys themselves.
        return self._prefix + key

    def _window_key(self, key: str) -> str:
        # For our Lua script, given the storage's own prefix ("<key_prefix>:…") by hand.
        if self._script is not None:
            return self.storage.bridge.prefixed_key(key)  # type: ignore[no-any-return]
        return self._prefix + key

    def _window_times(self, second: int) -> tuple[Counts, Counts, Counts]:
        if second != self._second:
            starts = (second - second % 60, second - second % 3600, second - second % 86400)
            resets = (starts[0] + 60, starts[1] + 3600, starts[2] + 86400)
            # Keys outlive their window a little, so one never vanishes early when two
            # processes' clocks differ slightly; at the reset the key changes anyway.
            lifetimes = (resets[0] - second + 2, resets[1] - second + 2, resets[2] - second + 2)
            self._windows = (starts, resets, lifetimes)
            self._second = second
            self._window_keys = {}
        return self._windows

    # -- counting --------------------------------------------------------------------------

    async def hit(
        self, key_id: str | int, *, minute: int | None, hour: int | None, day: int | None
    ) -> LimitDecision:
        """Count one request of `key_id` if every window has room; None limits mean the
        defaults. A refused request is counted nowhere."""
        second = int(self._clock())
        starts, resets, lifetimes = self._window_times(second)
        d_minute, d_hour, d_day = self.defaults
        limits_ = (
            d_minute if minute is None else minute,
            d_hour if hour is None else hour,
            d_day if day is None else day,
        )
        keys = self._window_keys.get(key_id)
        if keys is None:
            keys = self._window_keys[key_id] = (
                self._window_key(f"{key_id}/minute/{starts[0]}"),
                self._window_key(f"{key_id}/hour/{starts[1]}"),
                self._window_key(f"{key_id}/day/{starts[2]}"),
            )
        if self._script is not None:
            counts, refused = await self._redis_hit(keys, limits_, lifetimes)
        else:
            counts, refused = await self._memory_hit(keys, limits_, lifetimes)

        states = (
            WindowState(limits_[0], max(limits_[0] - counts[0], 0), resets[0]),
            WindowState(limits_[1], max(limits_[1] - counts[1], 0), resets[1]),
            WindowState(limits_[2], max(limits_[2] - counts[2], 0), resets[2]),
        )
        if not refused:
            return LimitDecision(True, None, 0, *states, second)
        # Several windows can be full; name the one that frees up last.
        full = [i for i in range(3) if counts[i] + 1 > limits_[i]]
        worst = max(full, key=lambda i: resets[i])
        return LimitDecision(False, WINDOW_NAMES[worst], resets[worst] - second, *states, second)

    async def _memory_hit(
        self, keys: tuple[str, str, str], limits_: Counts, lifetimes: Counts
    ) -> tuple[Counts, bool]:
        storage: MemoryStorage = self.storage
        counts = (
            await storage.incr(keys[0], lifetimes[0]),
            await storage.incr(keys[1], lifetimes[1]),
            await storage.incr(keys[2], lifetimes[2]),
        )
        if counts[0] <= limits_[0] and counts[1] <= limits_[1] and counts[2] <= limits_[2]:
            return counts, False
        for key in keys:
            await storage.decr(key)
        return (counts[0] - 1, counts[1] - 1, counts[2] - 1), True

    async def _redis_hit(
        self, keys: tuple[str, str, str], limits_: Counts, lifetimes: Counts
    ) -> tuple[Counts, bool]:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[tuple[Counts, bool]] = loop.create_future()
        group = self._pending.get((keys, limits_))
        if group is None:
            self._pending[(keys, limits_)] = (lifetimes, [waiter])
        else:
            group[1].append(waiter)
        if self._flusher is None:
            # Started now, it runs after the requests already queued on the loop, so their
            # hits join this batch.
            self._flusher = loop.create_task(self._flush())
        return await waiter

    async def _flush(self) -> None:
        """Send the queued hits, one script call at a time, until none are left."""
        try:
            while self._pending:
                groups = list(self._pending.items())
                if len(groups) > MAX_BATCH:
                    groups = groups[:MAX_BATCH]
                    for group_key, _ in groups:
                        del self._pending[group_key]
                else:
                    self._pending = {}
                await self._send(groups)
        finally:
            self._flusher = None

    async def _send(
        self, groups: list[tuple[tuple[tuple[str, ...], Counts], tuple[Counts, list[Any]]]]
    ) -> None:
        keys: list[str] = []
        args: list[int] = []
        for (group_keys, limits_), (lifetimes, waiters) in groups:
            keys.extend(group_keys)
            args.append(len(waiters))
            args.extend(limits_)
            args.extend(lifetimes)
        self.script_calls += 1
        self.script_hits += sum(len(waiters) for _, (_, waiters) in groups)
        try:
            result = await self._script(keys=keys, args=args)
        except Exception as error:
            for _, (_, waiters) in groups:
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_exception(error)
            return
        for index, (_, (_, waiters)) in enumerate(groups):
            base = index * 4
            admitted = int(result[base])
            c0, c1, c2 = int(result[base + 1]), int(result[base + 2]), int(result[base + 3])
            for position, waiter in enumerate(waiters):
                if waiter.done():  # its request was cancelled; its hit may still count
                    continue
                if position < admitted:
                    n = position + 1
                    waiter.set_result(((c0 + n, c1 + n, c2 + n), False))
                else:
                    waiter.set_result(((c0 + admitted, c1 + admitted, c2 + admitted), True))

    async def count_failure(self, address: str, *, per_minute: int) -> int | None:
        """Count one failed authentication from `address` in the current minute.

        Returns None while the address is within `per_minute` failures, else the seconds
        until its minute ends (when it may try again)."""
        second = int(self._clock())
        start = second - second % 60
        count = await self.storage.incr(self._storage_key(f"failed-auth/{address}/{start}"), 62)
        if count <= per_minute:
            return None
        return start + 60 - second

    async def reset_key(self, key_id: str | int) -> None:
        """Forget `key_id`'s counts in its current windows (e.g. after its limits change)."""
        second = int(self._clock())
        for name, size in WINDOWS:
            await self.storage.clear(self._storage_key(f"{key_id}/{name}/{second - second % size}"))

    @staticmethod
    def headers(decision: LimitDecision) -> list[tuple[bytes, bytes]]:
        """The `X-RateLimit-*` headers of a decision; see the module function `headers`."""
        return headers(decision)

    async def close(self) -> None:
        """Release the storage: Redis connections, the memory storage's expiry task."""
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        if self._script is not None:
            await self.storage.bridge.get_connection().aclose()
            return
        timer = getattr(self.storage, "timer", None)
        if timer is not None and not timer.done():
            timer.cancel()


# (now, limits) -> the Limit and Reset values as bytes: the same for every request of a
# key within a second, so they are formatted once. Cleared when it grows past a bound.
_FIXED_PARTS: dict[tuple[int, int, int, int], tuple[bytes, ...]] = {}


def headers(decision: LimitDecision) -> list[tuple[bytes, bytes]]:
    """The nine `X-RateLimit-{Minute,Hour,Day}-{Limit,Remaining,Reset}` headers; Reset is in
    seconds from now."""
    now = decision.now
    minute, hour, day = decision.minute, decision.hour, decision.day
    cache_key = (now, minute.limit, hour.limit, day.limit)
    fixed = _FIXED_PARTS.get(cache_key)
    if fixed is None:
        if len(_FIXED_PARTS) > 1024:
            _FIXED_PARTS.clear()
        fixed = _FIXED_PARTS[cache_key] = (
            b"%d" % minute.limit,
            b"%d" % (minute.reset_epoch - now),
            b"%d" % hour.limit,
            b"%d" % (hour.reset_epoch - now),
            b"%d" % day.limit,
            b"%d" % (day.reset_epoch - now),
        )
    return [
        (b"x-ratelimit-minute-limit", fixed[0]),
        (b"x-ratelimit-minute-remaining", b"%d" % minute.remaining),
        (b"x-ratelimit-minute-reset", fixed[1]),
        (b"x-ratelimit-hour-limit", fixed[2]),
        (b"x-ratelimit-hour-remaining", b"%d" % hour.remaining),
        (b"x-ratelimit-hour-reset", fixed[3]),
        (b"x-ratelimit-day-limit", fixed[4]),
        (b"x-ratelimit-day-remaining", b"%d" % day.remaining),
        (b"x-ratelimit-day-reset", fixed[5]),
    ]
