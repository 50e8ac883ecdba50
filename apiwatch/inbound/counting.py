"""Where the inbound middleware counts, and what it says when that fails.

`Counting` owns the three counters a request may touch: the key's windows in the shared
limiter (Redis), the same windows in a process-local fallback while the shared limiter is
away, and failed key checks per address (the throttle against guessing, with the addresses
it has blocked kept in memory). Its `storage` (a `Dependency`) keeps the log bounded during
an outage: one line when the shared limiter goes, one per `log_every_s` while it stays away
(with how many requests were counted without it and how many retries failed meanwhile, not
logged one by one), one when it is back; never a line per request.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable

from apiwatch.dependencies import Dependency
from apiwatch.inbound.keys import ApiKeyRecord
from apiwatch.inbound.limiter import InboundLimiter, LimitDecision

# After the shared limiter fails, the local fallback counts for this long before it is retried.
SHARED_RETRY_S = 1.0
# While the shared limiter stays away, one log line per this many seconds.
LOG_EVERY_S = 60.0
# Blocked addresses kept in memory before the expired ones are forgotten.
MAX_BLOCKED = 10_000


def address_bucket(address: str) -> str:
    """What failed authentication is counted per: the address, or for IPv6 its /64, which
    one host usually holds whole (per address, it could try 2**64 times as often)."""
    if ":" not in address:
        return address
    try:
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    except ValueError:
        return address


class Counting:
    """Count requests in `limiter`, or in `fallback` while `limiter` fails.

    Without a fallback every request tries the shared limiter and `hit` raises when it
    fails (the middleware then lets the request through or refuses it, per `fail_open`).
    `clock` returns epoch seconds (the middleware's clock, which tests move by hand).
    """

    def __init__(
        self,
        limiter: InboundLimiter,
        *,
        fallback: InboundLimiter | None,
        failed_auth_per_minute: int,
        fail_open: bool,
        clock: Callable[[], float] = time.time,
        log_every_s: float = LOG_EVERY_S,
    ) -> None:
        self.limiter = limiter
        self.fallback = fallback
        self.failed_auth_per_minute = failed_auth_per_minute
        self._clock = clock
        if fallback is not None:
            meanwhile = "key limits and failed keys counted in this process"
        elif fail_open:
            meanwhile = "keyed requests let through without limits"
        else:
            meanwhile = "keyed requests refused with 503"
        self.storage = Dependency(
            "inbound limiter storage",
            fallback=meanwhile,
            retry_s=SHARED_RETRY_S,
            log_every_s=log_every_s,
            clock=clock,
        )
        # Addresses refused for failed authentication, until (epoch second). Kept here so a
        # blocked address costs no storage round trip; another process sharing the Redis
        # counts blocks it at its own next failure.
        self._blocked: dict[str, int] = {}

    async def hit(self, key: ApiKeyRecord) -> LimitDecision:
        """Count one request of `key` in its windows. While the shared limiter fails, the
        fallback counts for `SHARED_RETRY_S` before the shared one is tried again, so a hung
        Redis costs one short timeout per period instead of one per request."""
        minute, hour, day = key.minute_limit, key.hour_limit, key.day_limit
        storage = self.storage
        if self.fallback is None or storage.should_try():
            try:
                decision = await self.limiter.hit(key.id, minute=minute, hour=hour, day=day)
            except Exception as error:
                storage.failed(error)
                if self.fallback is None:
                    raise
            else:
                storage.succeeded()
                return decision
        else:
            storage.served_locally()
        return await self.fallback.hit(key.id, minute=minute, hour=hour, day=day)

    def blocked_for(self, address: str, now: int) -> int:
        """Seconds `address` is still refused for failed authentication (0: it is not)."""
        if not self._blocked:
            return 0
        bucket = address_bucket(address)
        until = self._blocked.get(bucket)
        if until is None:
            return 0
        if now < until:
            return until - now
        del self._blocked[bucket]
        return 0

    async def count_failure(self, address: str | None) -> int:
        """Count a failed key check; the seconds to wait when the address is now blocked."""
        if address is None or self.failed_auth_per_minute <= 0:
            return 0
        bucket = address_bucket(address)
        wait = None
        counted = False
        storage = self.storage
        if self.fallback is None or storage.should_try():
            try:
                wait = await self.limiter.count_failure(
                    bucket, per_minute=self.failed_auth_per_minute
                )
            except Exception as error:
                storage.failed(error)
            else:
                storage.succeeded()
                counted = True
        else:
            storage.served_locally()
        if not counted:
            if self.fallback is None:
                return 0  # nothing counts failures while the storage is away
            wait = await self.fallback.count_failure(bucket, per_minute=self.failed_auth_per_minute)
        if wait is None:
            return 0
        now = int(self._clock())
        if len(self._blocked) > MAX_BLOCKED:  # bounded: forget blocks that have run out
            self._blocked = {a: t for a, t in self._blocked.items() if t > now}
        self._blocked[bucket] = now + wait
        return wait
