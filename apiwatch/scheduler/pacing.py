"""How many scheduled runs may go at once: a ceiling, lowered while the event loop lags.

Past what its core can do, a process that keeps a fixed number of probes in flight does not
probe more: every probe waits its turn for the event loop between sending its request and
reading the answer, and the monitor measures its own backlog as the upstream's latency
(measured with 5,000 probes a second demanded of a process that does about 2,000: an
upstream answering in 0.5 ms was stored at a median of 38 ms, and the writer, which needs a
loop turn for each step of a batch, fell behind until its queue spilled to disk).

`RunLimit` is the scheduler's semaphore with a limit that moves. A small task sleeps
`sample_s` at a time and measures how late it wakes: the loop's lag. Every `period_s` the
median of those readings is judged against `target_lag_s`:

- above it, while the limit was in use (runs waited for a place, or at least half of the
  places were taken), the limit is cut to 0.7 of itself, not below `floor`;
- below half of it, the limit grows by a quarter (at least one), up to `ceiling`;
- in between, it holds.

Lag that runs do not cause (a slow request, a long collection) cuts nothing while few runs
are in flight. The runs that go are measured honestly and stored; the rest wait in order,
and a job still waiting when its next slot comes skips that slot ("overlap", counted by the
scheduler). `target_lag_s` 0 keeps the limit at the ceiling: a plain semaphore.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections import deque
from collections.abc import Callable

import structlog

log = structlog.get_logger("apiwatch.scheduler")

_CUT = 0.7
_GROW = 1.25
# At most one line a minute about the limit: an overloaded process should say so, not shout.
_LOG_EVERY_S = 60.0


class RunLimit:
    """An async semaphore whose limit follows the event loop's lag; see the module doc.

    `acquire` / `release` (or `async with`). `limit`, `active`, `waiting` and `lag_s` (the
    median lag of the last judged period) can be read at any time. `start()` begins the lag
    readings (on the running loop); without it the limit stays where it is.
    """

    def __init__(
        self,
        ceiling: int,
        *,
        target_lag_s: float = 0.01,
        floor: int = 8,
        sample_s: float = 0.05,
        period_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ceiling < 1:
            raise ValueError(f"ceiling must be at least 1, got {ceiling}")
        self.ceiling = ceiling
        self.floor = max(1, min(floor, ceiling))
        self.target_lag_s = target_lag_s
        self.sample_s = sample_s
        self.period_s = period_s
        self._clock = clock
        self.limit = ceiling
        self.active = 0
        self.lag_s = 0.0
        self.cuts = 0  # times the limit was lowered, since start
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._readings: list[float] = []
        self._period_started = clock()
        self._peak_active = 0
        self._waited = False
        self._task: asyncio.Task[None] | None = None
        self._logged_at = -_LOG_EVERY_S

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    @property
    def adaptive(self) -> bool:
        return self.target_lag_s > 0

    async def acquire(self) -> None:
        if self.active < self.limit and not self._waiters:
            self._take()
            return
        self._waited = True
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                # The place was handed over as the waiter was cancelled: pass it on.
                self.active -= 1
                self._wake()
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        self.active -= 1
        self._wake()

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self.release()

    def _take(self) -> None:
        self.active += 1
        if self.active > self._peak_active:
            self._peak_active = self.active

    def _wake(self) -> None:
        while self._waiters and self.active < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._take()
                waiter.set_result(None)

    # -- the lag readings ------------------------------------------------------------------

    def start(self) -> None:
        """Begin reading the loop's lag (idempotent; nothing when not adaptive)."""
        if self.adaptive and self._task is None:
            self._task = asyncio.create_task(self._read_lag(), name="scheduler-lag")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _read_lag(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.sample_s)
            self.observe(loop.time() - before - self.sample_s)

    def observe(self, lag_s: float) -> None:
        """Take one lag reading; at the end of a period, judge the period."""
        # To the microsecond: the loop's clock arithmetic leaves 1e-13 where there was none.
        self._readings.append(round(max(lag_s, 0.0), 6))
        now = self._clock()
        if now - self._period_started < self.period_s:
            return
        self.judge(statistics.median(self._readings))
        self._readings.clear()
        self._period_started = now

    def judge(self, lag_s: float) -> None:
        """Move the limit for a period whose median lag was `lag_s`."""
        self.lag_s = lag_s
        in_use = self._waited or self._peak_active * 2 >= self.limit
        self._waited = bool(self._waiters)
        self._peak_active = self.active
        if not self.adaptive:
            return
        if lag_s > self.target_lag_s and in_use and self.limit > self.floor:
            self.limit = max(self.floor, int(self.limit * _CUT))
            self.cuts += 1
            now = self._clock()
            if now - self._logged_at >= _LOG_EVERY_S:
                self._logged_at = now
                # Slots that come while their job still waits for a place are skipped.
                log.warning(
                    "runs_at_once_cut",
                    lag_ms=round(lag_s * 1000, 1),
                    target_ms=round(self.target_lag_s * 1000, 1),
                    limit=self.limit,
                    ceiling=self.ceiling,
                )
        elif lag_s < self.target_lag_s / 2 and self.limit < self.ceiling:
            self.limit = min(self.ceiling, max(self.limit + 1, int(self.limit * _GROW)))
            self._wake()
