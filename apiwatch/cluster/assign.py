"""Rendezvous (highest-random-weight) hashing: each provider goes to the live worker whose
hash with it is highest. Adding or losing a worker moves only that worker's share, and every
process computes the same answer from the same member list, with no coordination."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def _weight(worker: str, item: str) -> int:
    digest = hashlib.blake2b(f"{worker}\x00{item}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(item: str, workers: Iterable[str]) -> str | None:
    """The worker that owns `item`, or None when there is no worker."""
    best: tuple[int, str] | None = None
    for worker in workers:
        candidate = (_weight(worker, item), worker)
        if best is None or candidate > best:
            best = candidate
    return best[1] if best else None


def share(worker: str, items: Iterable[str], workers: Iterable[str]) -> set[str]:
    """The items `worker` owns among `workers` (empty when it is not one of them)."""
    members = sorted(set(workers))
    if worker not in members:
        return set()
    return {item for item in items if owner(item, members) == worker}
