"""Worker membership in Redis: each worker refreshes a key with a time to live; the live
workers are the keys that have not expired.

A worker beats every `heartbeat_s / 2` and its key lives `heartbeat_s`, so a worker killed
with -9 drops out of every other member's view within `heartbeat_s` plus one refresh of
that view: under two heartbeat periods.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

PREFIX = "apiwatch:cluster:"


@dataclass(frozen=True)
class Member:
    id: str
    role: str
    location: str
    started_at: float
    beat_at: float
    providers: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "role": self.role,
            "location": self.location,
            "started_at": self.started_at,
            "beat_at": self.beat_at,
            "providers": self.providers,
        }


@dataclass
class Membership:
    """One process's membership. `redis` is a `redis.asyncio.Redis`."""

    redis: Any
    id: str
    role: str = "worker"
    location: str = ""
    heartbeat_s: float = 5.0
    prefix: str = PREFIX
    started_at: float = field(default_factory=time.time)
    providers: int = 0

    def _key(self, member_id: str) -> str:
        return f"{self.prefix}member:{member_id}"

    async def beat(self) -> None:
        """Say this process is alive, for `heartbeat_s`."""
        body = Member(
            self.id, self.role, self.location, self.started_at, time.time(), self.providers
        )
        await self.redis.set(
            self._key(self.id), json.dumps(body.as_dict()), px=int(self.heartbeat_s * 1000)
        )

    async def leave(self) -> None:
        """Leave at once (a clean shutdown hands the share over without waiting)."""
        await self.redis.delete(self._key(self.id))

    async def members(self) -> list[Member]:
        """Every live member, sorted by id."""
        keys = [key async for key in self.redis.scan_iter(match=self._key("*"), count=500)]
        if not keys:
            return []
        out = []
        for raw in await self.redis.mget(keys):
            if raw is None:  # expired between SCAN and MGET
                continue
            try:
                data = json.loads(raw)
                out.append(Member(**data))
            except (TypeError, ValueError):
                continue  # another program's key under our prefix: not a member
        return sorted(out, key=lambda m: m.id)

    async def workers(self) -> list[str]:
        """Ids of the live members that probe (role worker or all)."""
        return [m.id for m in await self.members() if m.role in ("worker", "all")]
