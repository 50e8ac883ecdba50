"""Per-key request limits over three windows (minute, hour, day): in process memory by
default (plain dicts), shared through Redis (the `limits` library's redis-py storage and
connection) across processes.

Choices, and why:
- Fixed windows aligned to the clock (a minute window starts at :00, the day at 00:00 UTC),
  with the window's start in the storage key. The reset time is then known without asking
  the storage (one round trip less per window with Redis), and tests can move an injected
  clock across a window boundary. The price of fixed windows: a client can send a full
  minute's quota at :59 and again at :00; the hour and day windows still bound it.
- A refused request uses no quota in any window. Otherwise a client refused by its minute
  window would burn its hour and day quotas while it retries.
- In memory each window is one dict from key id to count, for the window's current start;
  when the clock enters the next window that dict is replaced by an empty one, so nothing
  needs sweeping and a hit is three dict reads and, when every window has room, three
  writes (a refused request writes nothing). No `await` happens between the check and the
  writes, so concurrent requests cannot interleave there. (`limits`' memory storage did the
  same with a key string, a lock and an expiry sweep per window: most of the cost of a hit.)
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

_new = tuple.__new__


def _async_uri(storage_uri: str) -> str:
    return storage_uri if storage_uri.startswith("async+") else f"async+{storage_uri}"


class InboundLimiter:
    """Counts requests per key in minute, hour and day windows.

    `storage_uri`: "memory://" (this process only) or a Redis URL ("redis://host:6379/0",
    "rediss://…", or the `limits` spelling "async+redis://…"), shared by every process that
    uses the same server and `key_prefix` (Redis Cluster is not supported: one script call
    touches many keys). `defaults` are the (minute, hour, day) limits of a key without its
    own. `timeout_s` bounds each Redis connect and reply. `clock` returns epoch seconds;
    tests pass their own.
    """

    def __init__(
        self,
        storage_uri: str = "memory://",
        *,
        defaults: tuple[int, int, int] = (100, 1000, 10000),
        key_prefix: str = "apiwatch-inbound",
        timeout_s: float | None = None,
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
            self.storage = None
        elif scheme in ("async+redis", "async+rediss", "async+redis+unix"):
            # coredis (limits' default client) is not a dependency; redis-py is.
            # `timeout_s` bounds connecting and every reply: a hung Redis must not hold a
            # request for redis-py's default (none) or the OS's connect timeout.
            timeouts = (
                {}
                if timeout_s is None
                else {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s}
            )
            self.storage = storage_from_string(
                uri, implementation="redispy", key_prefix=key_prefix, **timeouts
            )
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
        # In memory: per window, (its start, {key id: count}); the failed-auth counts per
        # address likewise for the current minute.
        self._counts: list[tuple[int, dict[str | int, int]]] = [(-1, {}), (-1, {}), (-1, {})]
        self._failures: tuple[int, dict[str, int]] = (-1, {})
        # Redis batching: hits waiting for the next script call, per (keys, limits).
        self._pending: dict[tuple[tuple[str, ...], Counts], tuple[Counts, list[Any]]] = {}
        self._flusher: asyncio.Task[None] | None = None
        # Script calls made and hits they carried (the mean batch size is their ratio).
        self.script_calls = 0
        self.script_hits = 0

    # -- keys ------------------------------------------------------------------------------

    def _window_key(self, key: str) -> str:
        # For our Lua script, given the storage's own prefix ("<key_prefix>:…") by hand.
        return self.storage.bridge.prefixed_key(key)  # type: ignore[no-any-return]

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
        if second != self._second:
            self._window_times(second)
        starts, resets, lifetimes = self._windows
        if minute is None:
            minute = self.defaults[0]
        if hour is None:
            hour = self.defaults[1]
        if day is None:
            day = self.defaults[2]
        if self._script is not None:
            keys = self._window_keys.get(key_id)
            if keys is None:
                keys = self._window_keys[key_id] = (
                    self._window_key(f"{key_id}/minute/{starts[0]}"),
                    self._window_key(f"{key_id}/hour/{starts[1]}"),
                    self._window_key(f"{key_id}/day/{starts[2]}"),
                )
            (c0, c1, c2), refused = await self._redis_hit(keys, (minute, hour, day), lifetimes)
        else:
            # In memory, inline: this runs on every request.
            tables = self._counts
            if tables[0][0] != starts[0] or tables[1][0] != starts[1] or tables[2][0] != starts[2]:
                self._new_windows(starts)
            m, h, d = tables[0][1], tables[1][1], tables[2][1]
            c0 = m.get(key_id, 0) + 1
            c1 = h.get(key_id, 0) + 1
            c2 = d.get(key_id, 0) + 1
            refused = c0 > minute or c1 > hour or c2 > day
            if refused:  # counted nowhere: report the counts before this request
                c0, c1, c2 = c0 - 1, c1 - 1, c2 - 1
            else:
                m[key_id] = c0
                h[key_id] = c1
                d[key_id] = c2

        # tuple.__new__ directly: a NamedTuple's own __new__ is a Python call, and four of
        # these are made per request.
        states = (
            _new(WindowState, (minute, minute - c0 if c0 < minute else 0, resets[0])),
            _new(WindowState, (hour, hour - c1 if c1 < hour else 0, resets[1])),
            _new(WindowState, (day, day - c2 if c2 < day else 0, resets[2])),
        )
        if not refused:
            return _new(LimitDecision, (True, None, 0, *states, second))
        # Several windows can be full; name the one that frees up last.
        limits_ = (minute, hour, day)
        counts = (c0, c1, c2)
        full = [i for i in range(3) if counts[i] + 1 > limits_[i]]
        worst = max(full, key=lambda i: resets[i])
        return LimitDecision(False, WINDOW_NAMES[worst], resets[worst] - second, *states, second)

    def _new_windows(self, starts: Counts) -> None:
        """The clock entered a new window: its counts start from nothing (the old window's
        are done with, so they are dropped rather than swept)."""
        tables = self._counts
        for index in range(3):
            if tables[index][0] != starts[index]:
                tables[index] = (starts[index], {})

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
        if self.storage is None:
            if self._failures[0] != start:
                self._failures = (start, {})
            failures = self._failures[1]
            count = failures[address] = failures.get(address, 0) + 1
        else:
            count = await self.storage.incr(f"failed-auth/{address}/{start}", 62)
        if count <= per_minute:
            return None
        return start + 60 - second

    async def reset_key(self, key_id: str | int) -> None:
        """Forget `key_id`'s counts in its current windows (e.g. after its limits change)."""
        second = int(self._clock())
        if self.storage is None:
            for _start, counts in self._counts:
                counts.pop(key_id, None)
            return
        for name, size in WINDOWS:
            await self.storage.clear(f"{key_id}/{name}/{second - second % size}")

    @staticmethod
    def headers(decision: LimitDecision) -> list[tuple[bytes, bytes]]:
        """The `X-RateLimit-*` headers of a decision; see the module function `headers`."""
        return headers(decision)

    async def close(self) -> None:
        """Release the storage's Redis connections (nothing to release in memory)."""
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        if self._script is not None:
            await self.storage.bridge.get_connection().aclose()


# (now, limits) -> the six Limit and Reset headers, made once: they are the same for every
# request of a key within a second. Cleared when it grows past a bound.
_FIXED_HEADERS: dict[tuple[int, int, int, int], tuple[tuple[bytes, bytes], ...]] = {}

_MINUTE_REMAINING = b"x-ratelimit-minute-remaining"
_HOUR_REMAINING = b"x-ratelimit-hour-remaining"
_DAY_REMAINING = b"x-ratelimit-day-remaining"


def headers(decision: LimitDecision) -> list[tuple[bytes, bytes]]:
    """The nine `X-RateLimit-{Minute,Hour,Day}-{Limit,Remaining,Reset}` headers; Reset is in
    seconds from now."""
    now, minute, hour, day = decision.now, decision.minute, decision.hour, decision.day
    cache_key = (now, minute.limit, hour.limit, day.limit)
    fixed = _FIXED_HEADERS.get(cache_key)
    if fixed is None:
        if len(_FIXED_HEADERS) > 1024:
            _FIXED_HEADERS.clear()
        fixed = _FIXED_HEADERS[cache_key] = (
            (b"x-ratelimit-minute-limit", b"%d" % minute.limit),
            (b"x-ratelimit-minute-reset", b"%d" % (minute.reset_epoch - now)),
            (b"x-ratelimit-hour-limit", b"%d" % hour.limit),
            (b"x-ratelimit-hour-reset", b"%d" % (hour.reset_epoch - now)),
            (b"x-ratelimit-day-limit", b"%d" % day.limit),
            (b"x-ratelimit-day-reset", b"%d" % (day.reset_epoch - now)),
        )
    return [
        fixed[0],
        (_MINUTE_REMAINING, b"%d" % minute.remaining),
        fixed[1],
        fixed[2],
        (_HOUR_REMAINING, b"%d" % hour.remaining),
        fixed[3],
        fixed[4],
        (_DAY_REMAINING, b"%d" % day.remaining),
        fixed[5],
    ]
