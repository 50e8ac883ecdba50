"""The per-provider windows the result rules judge: the last N (time, value) pairs.

A monitor keeps two per provider (latencies for the response-time rule, outcomes for the
error-rate rule), ten thousand providers and more in one process. Each is a ring of two
`array('d')`s, times as POSIX seconds: 16 bytes a result, where a deque of (datetime,
value) tuples took about a hundred.
"""

from __future__ import annotations

import math
from array import array


class TimedWindow:
    """The last `size` (time, value) pairs, oldest first."""

    __slots__ = ("_at", "_start", "_values", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._at = array("d")
        self._values = array("d")
        self._start = 0  # where the oldest pair is, once the ring is full

    def append(self, at: float, value: float) -> None:
        if len(self._at) < self.size:
            self._at.append(at)
            self._values.append(value)
            return
        i = self._start
        self._at[i], self._values[i] = at, value
        self._start = (i + 1) % self.size

    def since(self, cutoff: float) -> list[float]:
        """The values of the pairs at or after `cutoff`, oldest first."""
        at, values, start = self._at, self._values, self._start
        order = [*range(start, len(at)), *range(start)]
        return [values[i] for i in order if at[i] >= cutoff]

    def largest(self) -> float:
        """The largest value in the window, whatever its time (-inf when empty)."""
        return max(self._values, default=-math.inf)

    def resized(self, size: int) -> TimedWindow:
        """A window of `size` holding the newest pairs of this one that fit."""
        window = TimedWindow(size)
        at, values, start = self._at, self._values, self._start
        for i in [*range(start, len(at)), *range(start)][-size:]:
            window.append(at[i], values[i])
        return window

    def __len__(self) -> int:
        return len(self._at)
