"""The Redis budget store: one budget shared by every apiwatch process on one Redis.

Check-every-window-then-increment runs as one Lua script, which Redis executes without
interleaving any other command, so two processes can never both take a window's last slot.
Keys (`{prefix}{provider}:{window}:{period start}` hashes for the provider-wide tier,
`{prefix}{provider}:{scope}:{window}:{period start}` for an endpoint or key tier,
`{prefix}{provider}:blocked`)
expire shortly after their period or block ends, so nothing needs sweeping. The provider
is a hash tag, so one provider's keys share a Redis Cluster slot, as a script requires.

Each process decides the period from its own clock (injected, for tests): hosts should be
NTP-synchronised, or a request near a boundary may land in a neighbouring period.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from apiwatch.budget.stores.base import AcquireResult, Crossing, Slot, WindowState

if TYPE_CHECKING:
    from redis.asyncio import Redis

# Keys outlive their period by this much, so a reader at the boundary never sees a figure
# vanish early; a later period uses a new key anyway.
_GRACE_MS = 1000

# KEYS[1]: the provider's block key; KEYS[2..]: one hash per window period.
# ARGV: now, weight, warn_at, then per window its catalogue limit (0: none) and TTL in ms,
# then per window its period end (to report the full window that ends last).
# Returns {allowed, index of the full window or 0, block-until or '', {index, used, limit}…}.
_ACQUIRE = """
local now = tonumber(ARGV[1])
local weight = tonumber(ARGV[2])
local warn_at = tonumber(ARGV[3])
local blocked = redis.call('GET', KEYS[1])
if blocked and tonumber(blocked) > now then
  return {0, 0, blocked, {}}
end
local n = #KEYS - 1
local used, limits = {}, {}
local refused = 0
for i = 1, n do
  local h = redis.call('HMGET', KEYS[i + 1], 'used', 'limit')
  used[i] = tonumber(h[1]) or 0
  limits[i] = tonumber(h[2]) or tonumber(ARGV[2 + 2 * i])
  if limits[i] > 0 and used[i] + weight > limits[i] then
    if refused == 0 or tonumber(ARGV[3 + 2 * n + i]) >= tonumber(ARGV[3 + 2 * n + refused]) then
      refused = i
    end
  end
end
if refused == 0 then
  for i = 1, n do
    if limits[i] > 0 then
      used[i] = redis.call('HINCRBY', KEYS[i + 1], 'used', weight)
      if used[i] == weight then redis.call('PEXPIRE', KEYS[i + 1], ARGV[3 + 2 * i]) end
    end
  end
end
local crossed = {}
for i = 1, n do
  if limits[i] > 0 and used[i] > 0 and used[i] >= warn_at * limits[i] then
    if redis.call('HSETNX', KEYS[i + 1], 'warned', 1) == 1 then
      table.insert(crossed, i)
      table.insert(crossed, used[i])
      table.insert(crossed, limits[i])
    end
  end
end
if refused == 0 then return {1, 0, '', crossed} end
return {0, refused, '', crossed}
"""

# KEYS[1]: the window period's hash. ARGV: used, limit or '', reset or '', TTL in ms.
# The higher of the reported and counted figures is kept (see gate.BudgetGate.report).
_REPORT = """
local current = tonumber(redis.call('HGET', KEYS[1], 'used') or '0')
local used = tonumber(ARGV[1])
if used > current then
  redis.call('HSET', KEYS[1], 'used', used)
  current = used
end
redis.call('HSET', KEYS[1], 'src', 'reported')
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'limit', ARGV[2]) end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'reset', ARGV[3]) end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return current
"""

# KEYS[1]: the block key. ARGV: until, now, TTL in ms. Keeps the later of two blocks.
_BLOCK = """
local current = redis.call('GET', KEYS[1])
if current and tonumber(current) > tonumber(ARGV[2])
   and tonumber(current) >= tonumber(ARGV[1]) then
  return current
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return ARGV[1]
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _ttl_ms(end: float, now: float) -> int:
    # Relative TTLs (not EXPIREAT) so an injected clock far from real time still works.
    return max(1, math.ceil((end - now) * 1000)) + _GRACE_MS


class RedisBudgetStore:
    """Budget counters in Redis, shared by every process that uses the same prefix."""

    def __init__(self, redis_client: Redis, prefix: str = "apiwatch:budget:") -> None:
        self._redis = redis_client
        self._prefix = prefix
        self._acquire = redis_client.register_script(_ACQUIRE)
        self._report = redis_client.register_script(_REPORT)
        self._block = redis_client.register_script(_BLOCK)

    def _key(self, provider: str, slot: Slot) -> str:
        scope = f"{slot.scope}:" if slot.scope else ""
        return f"{self._prefix}{{{provider}}}:{scope}{slot.window}:{int(slot.start)}"

    def _block_key(self, provider: str) -> str:
        return f"{self._prefix}{{{provider}}}:blocked"

    async def acquire(
        self,
        provider: str,
        slots: Sequence[Slot],
        *,
        weight: int,
        now: float,
        warn_at: float,
    ) -> AcquireResult:
        keys = [self._block_key(provider)] + [self._key(provider, slot) for slot in slots]
        args: list[Any] = [repr(now), weight, repr(warn_at)]
        for slot in slots:
            args += [slot.limit, _ttl_ms(slot.end, now)]
        args += [repr(slot.end) for slot in slots]
        allowed, refused, blocked, flat = await self._acquire(keys=keys, args=args)
        crossings = tuple(
            Crossing(
                slots[int(flat[i]) - 1].window,
                int(flat[i + 1]),
                int(flat[i + 2]),
                slots[int(flat[i]) - 1].scope,
            )
            for i in range(0, len(flat), 3)
        )
        blocked_text = _text(blocked)
        refused_slot = slots[int(refused) - 1] if int(refused) else None
        return AcquireResult(
            allowed=bool(int(allowed)),
            refused_by=refused_slot.window if refused_slot else None,
            refused_scope=refused_slot.scope if refused_slot else "",
            blocked_until=float(blocked_text) if blocked_text else None,
            crossings=crossings,
        )

    async def report(
        self,
        provider: str,
        slot: Slot,
        *,
        used: int,
        limit: int | None,
        reset_at: float | None,
        now: float,
    ) -> int:
        args = [
            used,
            "" if limit is None else limit,
            "" if reset_at is None else repr(reset_at),
            _ttl_ms(max(slot.end, reset_at or slot.end), now),
        ]
        return int(await self._report(keys=[self._key(provider, slot)], args=args))

    async def block_until(self, provider: str, until: float, *, now: float) -> float:
        args = [repr(until), repr(now), _ttl_ms(until, now)]
        return float(_text(await self._block(keys=[self._block_key(provider)], args=args)))

    async def blocked_until(self, provider: str, *, now: float) -> float | None:
        raw = await self._redis.get(self._block_key(provider))
        if raw is None:
            return None
        until = float(_text(raw))
        return until if until > now else None

    async def read(self, provider: str, slots: Sequence[Slot]) -> list[WindowState | None]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for slot in slots:
                pipe.hmget(self._key(provider, slot), "used", "limit", "src", "reset")
            rows = await pipe.execute()
        result: list[WindowState | None] = []
        for used, limit, source, reset in rows:
            if used is None and limit is None:
                result.append(None)
                continue
            result.append(
                WindowState(
                    used=int(_text(used)) if used is not None else 0,
                    limit=int(_text(limit)) if limit is not None else None,
                    reported=source is not None and _text(source) == "reported",
                    reset_at=float(_text(reset)) if reset is not None else None,
                )
            )
        return result
