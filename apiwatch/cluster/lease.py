"""The leader lease: one process at a time holds it, renews it, and loses it when it stops
renewing. Each new holder gets a larger fencing token, so work done under an old lease can
be told apart from work done under the new one.

Acquire and renew are one Lua script each, so two processes can never both believe they
acquired the same lease.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from apiwatch.cluster.membership import PREFIX

# KEYS[1] lease key, KEYS[2] token counter; ARGV[1] holder id, ARGV[2] ttl ms.
# Returns the holder's token, or 0 when somebody else holds the lease.
_ACQUIRE = """
local current = redis.call('GET', KEYS[1])
if current then
  local holder, token = string.match(current, '^(.*)|(%d+)$')
  if holder == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return tonumber(token)
  end
  return 0
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. token, 'PX', ARGV[2])
return token
"""

# Release only our own lease.
_RELEASE = """
local current = redis.call('GET', KEYS[1])
if current and string.match(current, '^(.*)|%d+$') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


@dataclass(frozen=True)
class Lease:
    holder: str
    token: int


class LeaderLease:
    def __init__(self, redis: Any, holder: str, *, ttl_s: float = 15.0, prefix: str = PREFIX):
        self._redis = redis
        self.holder = holder
        self.ttl_ms = int(ttl_s * 1000)
        self._key = f"{prefix}leader"
        self._counter = f"{prefix}leader:token"
        self.token = 0  # ours while we lead; 0 when we do not

    @property
    def leading(self) -> bool:
        return self.token > 0

    async def acquire_or_renew(self) -> bool:
        """Take the lease if it is free, renew it if it is ours; True while we lead."""
        token = await self._redis.eval(
            _ACQUIRE, 2, self._key, self._counter, self.holder, self.ttl_ms
        )
        self.token = int(token)
        return self.token > 0

    async def release(self) -> None:
        await self._redis.eval(_RELEASE, 1, self._key, self.holder)
        self.token = 0

    async def current(self) -> Lease | None:
        raw = await self._redis.get(self._key)
        if raw is None:
            return None
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        holder, _, token = text.rpartition("|")
        return Lease(holder, int(token)) if token.isdigit() else None

    async def still_ours(self) -> bool:
        """Fencing check before acting as leader: the stored lease carries our token."""
        lease = await self.current()
        return lease is not None and lease.holder == self.holder and lease.token == self.token
