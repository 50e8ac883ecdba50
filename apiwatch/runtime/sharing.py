"""Work sharing between apiwatch processes: this process's role, the providers it owns, and
whether it leads.

Without Redis a process is alone: it owns every provider (unless its role is `api`) and
leads. With Redis every process registers with a heartbeat (`cluster.membership`); the
probing processes (roles `all` and `worker`) split the providers by rendezvous hashing
(`cluster.assign`), recomputed every half heartbeat, so a worker that dies has its share
taken over within two heartbeat periods; and one process holds the leader lease
(`cluster.lease`), which alone evaluates alert rules, sends notifications and runs roll-ups
and retention. A Redis error leaves the last view in place and is logged once per outage.

Locations (`APIWATCH_LOCATION`): the hashing runs among the workers of one location, so
every location probes every provider once (or only the providers whose catalogue entry
lists it, `locations: [eu, us]`). A worker without a location, or a process alone, ignores
that list. Without locations every worker is in the one location "" and the split is as it
always was.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Awaitable, Callable, Collection, Iterable
from typing import Any, Literal

import structlog

from apiwatch.cluster import LeaderLease, Membership, share

log = structlog.get_logger("apiwatch.cluster")

Role = Literal["all", "api", "worker"]


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class WorkSharing:
    def __init__(
        self,
        *,
        role: Role = "all",
        providers: Iterable[str] = (),
        redis: Any | None = None,
        worker_id: str | None = None,
        location: str = "",
        heartbeat_s: float = 5.0,
        lease_s: float = 15.0,
        prefix: str = "apiwatch:cluster:",
        on_lead: Callable[[], Awaitable[None]] | None = None,
        on_follow: Callable[[], Awaitable[None]] | None = None,
        on_gain: Callable[[set[str]], Awaitable[None]] | None = None,
        placement: Callable[[str], Collection[str]] = lambda provider: (),
    ) -> None:
        self.role: Role = role
        self.id = worker_id or default_worker_id()
        self.location = location
        self.heartbeat_s = heartbeat_s
        self.lease_s = lease_s
        self._providers = sorted(providers)
        self._redis = redis
        self._on_lead = on_lead
        self._on_follow = on_follow
        self._on_gain = on_gain
        # The locations a provider's catalogue entry asks for (empty: every location).
        self._placement = placement
        # The locations of the live probing members: who judges a provider's status.
        self.locations: list[str] = [location] if role != "api" else []
        self.membership = (
            Membership(
                redis,
                self.id,
                role=role,
                location=location,
                heartbeat_s=heartbeat_s,
                prefix=prefix,
            )
            if redis is not None
            else None
        )
        self.lease = (
            LeaderLease(redis, self.id, ttl_s=lease_s, prefix=prefix) if redis is not None else None
        )
        probes = role != "api"
        self._owned: set[str] = set(self._providers) if probes and redis is None else set()
        self.leading = redis is None
        self.workers: list[str] = [self.id] if probes and redis is None else []
        self.refreshed_at: float | None = None
        self._failing = False
        # When the lease was last renewed, taken before the renewal was sent: Redis counts
        # the lease's time from a moment after it, so a leader judging by this stops first.
        self._renewed_at = 0.0

    def _eligible(self, providers: Iterable[str], location: str | None = None) -> set[str]:
        """The providers a worker of `location` (default: this one's) may probe."""
        where = self.location if location is None else location
        return {
            pid
            for pid in providers
            if not where or not (wanted := self._placement(pid)) or where in wanted
        }

    @property
    def shared(self) -> bool:
        return self._redis is not None

    def owns(self, provider_id: str) -> bool:
        if not self.shared:  # alone: everything, unless this process only serves
            return self.role != "api"
        return provider_id in self._owned

    def owned(self) -> set[str]:
        return set(self._owned)

    def set_providers(self, providers: Iterable[str]) -> None:
        """The catalogue changed: recompute the share at the next tick (at once when alone)."""
        self._providers = sorted(providers)
        if not self.shared and self.role != "api":
            self._owned = set(self._providers)

    async def tick(self) -> None:
        """Beat, refresh the share, take or renew the lease. Run every `heartbeat_s / 2`."""
        if self.membership is None or self.lease is None:
            return
        try:
            self.membership.providers = len(self._owned)
            await self.membership.beat()
            probing = [m for m in await self.membership.members() if m.role in ("worker", "all")]
            was_leading = self.leading
            asked_at = time.monotonic()
            leading = await self.lease.acquire_or_renew()
        except Exception as error:  # Redis away: keep the last view, say so once
            if not self._failing:
                log.warning("cluster_unreachable", error=f"{type(error).__name__}: {error}")
            self._failing = True
            await self._step_down_if_unrenewed()
            return
        if leading:
            self._renewed_at = asked_at
        if self._failing:
            log.info("cluster_reachable")
            self._failing = False
        workers = [m.id for m in probing]
        here = [m.id for m in probing if m.location == self.location]
        self.workers = workers
        self.locations = sorted({m.location for m in probing})
        owned = (
            share(self.id, self._eligible(self._providers), here) if self.role != "api" else set()
        )
        if owned != self._owned:
            log.info(
                "cluster_share_changed",
                worker=self.id,
                providers=len(owned),
                gained=len(owned - self._owned),
                lost=len(self._owned - owned),
                workers=len(workers),
            )
            gained = owned - self._owned
            self._owned = owned
            if gained and self._on_gain is not None and self.refreshed_at is not None:
                await self._on_gain(gained)  # taken over from another worker
        self.refreshed_at = time.time()
        self.leading = leading
        if leading and not was_leading:
            log.info("cluster_leader", worker=self.id, token=self.lease.token)
            if self._on_lead is not None:
                await self._on_lead()
        elif was_leading and not leading:
            log.warning("cluster_leader_lost", worker=self.id)
            if self._on_follow is not None:
                await self._on_follow()

    async def _step_down_if_unrenewed(self) -> None:
        """Fencing without Redis: a leader that could not renew its lease for half the
        lease time stops acting as leader (alerts, notifications, roll-ups), well before
        the lease expires in Redis and another process may take it. A shorter blip keeps
        the leader, so a brief outage does not hand paging back and forth."""
        if not self.leading or time.monotonic() - self._renewed_at < self.lease_s / 2:
            return
        self.leading = False
        log.warning("cluster_leader_lost", worker=self.id, reason="lease_not_renewed")
        if self._on_follow is not None:
            await self._on_follow()

    async def leave(self) -> None:
        """Hand over at once on a clean shutdown: drop out and release the lease."""
        if self.membership is None or self.lease is None:
            return
        try:
            await self.membership.leave()
            if self.leading:
                await self.lease.release()
        except Exception as error:
            log.warning("cluster_leave_failed", error=f"{type(error).__name__}: {error}")

    async def view(self) -> dict[str, Any]:
        """What GET /api/cluster shows: members, their shares, the leader."""
        if self.membership is None or self.lease is None:
            return {
                "shared": False,
                "self": self.id,
                "role": self.role,
                "leader": self.id,
                "members": [
                    {
                        "id": self.id,
                        "role": self.role,
                        "location": self.location,
                        "providers": sorted(self._owned),
                    }
                ],
            }
        members = await self.membership.members()
        lease = await self.lease.current()

        def providers_of(member: Any) -> list[str]:
            if member.role == "api":
                return []
            here = [
                m.id
                for m in members
                if m.role in ("worker", "all") and m.location == member.location
            ]
            return sorted(share(member.id, self._eligible(self._providers, member.location), here))

        return {
            "shared": True,
            "self": self.id,
            "role": self.role,
            "leader": lease.holder if lease else None,
            "leader_token": lease.token if lease else None,
            "heartbeat_s": self.heartbeat_s,
            "members": [{**m.as_dict(), "providers": providers_of(m)} for m in members],
        }
