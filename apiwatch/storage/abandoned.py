"""Releasing SQLite's write lock from connections that nobody will close.

A task cancelled inside a transaction leaves its pooled connection in a reference cycle;
the connection is closed, and its transaction rolled back, only when a full garbage
collection finds the cycle. On SQLite that connection keeps the database's write lock
meanwhile, so every other write waits it out ("database is locked"). Start-up freezes what
it built (`gc.freeze`), which makes full collections rarer still, so the places that meet
the lock (the recorder's failed writes, the stop before its last writes) collect at once,
at most once per `min_interval_s`.
"""

from __future__ import annotations

import gc
import time

_last = float("-inf")


def is_locked(error: BaseException) -> bool:
    """SQLite's "database is locked" (or "table is locked"), however it was wrapped."""
    return "is locked" in str(error)


def release_abandoned_connections(*, min_interval_s: float = 5.0) -> bool:
    """Collect garbage (closing abandoned connections); False when one ran too recently."""
    global _last
    now = time.monotonic()
    if now - _last < min_interval_s:
        return False
    _last = now
    gc.collect()
    return True
