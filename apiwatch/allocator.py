"""The C allocator's set-up for a long-running process: glibc's malloc arenas, capped.

glibc gives each new thread that allocates its own malloc arena, up to eight per core.
apiwatch's threads (the database connections' threads, `asyncio.to_thread` workers) each
take one, and memory freed in an arena is kept by it: at 10,000 providers the arenas held
about 1 MB more every minute of a fifteen-minute run. Capped at two, they stayed flat,
and the threads hold the GIL for most of their work, so they seldom wait for an arena.
The cap applies to arenas made after it is set, so `apiwatch serve` sets it first thing.
"""

from __future__ import annotations

import ctypes
import os
import platform

# mallopt's parameter number for the arena cap (malloc.h: M_ARENA_MAX).
M_ARENA_MAX = -8
ARENAS = 2


def cap_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas at `arenas`; True if the cap was set here.

    Nothing is done where the C library is not glibc, or where the operator set the cap
    (`MALLOC_ARENA_MAX`, or `glibc.malloc.arena_max` in `GLIBC_TUNABLES`): glibc applies
    that figure itself, at start."""
    if (
        os.environ.get("MALLOC_ARENA_MAX")
        or "glibc.malloc.arena_max" in os.environ.get("GLIBC_TUNABLES", "")
        or platform.libc_ver()[0] != "glibc"
    ):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # pragma: no cover - a glibc without it
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return mallopt(M_ARENA_MAX, arenas) == 1
