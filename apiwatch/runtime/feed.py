"""The live feed's hub: bus events in, one bounded outbox per WebSocket connection out.

`LiveFeed.observe` is a bus listener: it runs inline in the probe's path, so it only encodes
the event once and appends it to each interested connection's outbox; it never awaits and
never waits for a client. Each `Connection` holds at most `queue_size` messages. When one
is full, its oldest `new_log_entry` is dropped (status changes, alerts, budget alerts and
status updates never are) and the client is told how many with a `dropped` message before
the next one it gets. A client whose send has not completed for `stuck_after_s`, or whose
outbox is full of messages that must not be dropped, is disconnected.

The hub also sends every connection a `status_update` every `status_interval_s` and a
`ping` every `ping_interval_s`. Messages from other processes (the Redis relay) come in
through `deliver`, already encoded.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import structlog

from apiwatch.domain import StatusChange
from apiwatch.runtime.feed_messages import (
    DROPPED,
    ERROR,
    PING,
    PROVIDER_STATUS_CHANGE,
    STATUS_UPDATE,
    SUBSCRIBED,
    Message,
    encode,
    message,
)
from apiwatch.stopping import stop_tasks

log = structlog.get_logger("apiwatch.feed")

# Delivered whatever the client's filter: the heartbeat and the control messages.
ALWAYS = frozenset({PING, DROPPED, SUBSCRIBED, ERROR})
# A status snapshot is reused this long (a thousand clients connecting at once query once).
SNAPSHOT_TTL_S = 1.0


class Connection:
    """One client's outbox and filter. `next()` is awaited by the connection's sender."""

    def __init__(
        self,
        *,
        types: frozenset[str] | None,
        providers: frozenset[str] | None,
        queue_size: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.types = types
        self.providers = providers
        self._queue_size = queue_size
        self._clock = clock
        # Entries are [text, droppable]; a dropped entry's text becomes None and is skipped.
        self._items: deque[list[Any]] = deque()
        # The live droppable entries, oldest first (always a subsequence of `_items`).
        self._droppable: deque[list[Any]] = deque()
        self._live = 0
        self._wake = asyncio.Event()
        self.dropped = 0  # not yet reported to the client
        self.dropped_total = 0
        self.delivered = 0
        self.sending_since: float | None = None
        self.closed: str | None = None
        self.task: asyncio.Task[Any] | None = None  # cancelled when the hub drops the client
        self.on_kill: Callable[[Connection], None] = lambda connection: None

    def __len__(self) -> int:
        return self._live

    def wants(self, msg: Message) -> bool:
        if msg.type in ALWAYS:
            return True
        if self.types is not None and msg.type not in self.types:
            return False
        return self.providers is None or msg.provider is None or msg.provider in self.providers

    def offer(self, msg: Message) -> None:
        if self.closed is None and self.wants(msg):
            self.push(msg.text, droppable=msg.droppable)

    def push(self, text: str, *, droppable: bool = False) -> None:
        """Queue `text`, making room by dropping the oldest droppable entry when full."""
        if self._live >= self._queue_size:
            if self._droppable:
                victim = self._droppable.popleft()
                victim[0] = None
                self._live -= 1
                self._count_drop()
            elif droppable:
                self._count_drop()  # nothing older to drop: this one goes
                return
            else:
                self.kill(f"too slow: {self._live} undelivered status messages")
                return
        entry = [text, droppable]
        self._items.append(entry)
        if droppable:
            self._droppable.append(entry)
        self._live += 1
        if len(self._items) > 2 * self._queue_size:
            # Dropped entries wait in `_items` until passed over; a slow but live reader
            # would let them pile up, so sweep them out now and then.
            self._items = deque(e for e in self._items if e[0] is not None)
        self._wake.set()

    def _count_drop(self) -> None:
        self.dropped += 1
        self.dropped_total += 1

    async def next(self) -> str | None:
        """The next text to send (a `dropped` notice first when messages were lost), or None
        once the connection is closed."""
        while True:
            if self.closed is not None:
                return None
            if self.dropped:
                count, self.dropped = self.dropped, 0
                return message(DROPPED, {"count": count, "total": self.dropped_total}).text
            while self._items:
                entry = self._items.popleft()
                text = entry[0]
                if text is None:
                    continue
                if entry[1]:
                    self._droppable.popleft()  # it is the oldest live droppable entry
                self._live -= 1
                self.delivered += 1
                return text  # type: ignore[no-any-return]
            self._wake.clear()
            await self._wake.wait()

    def begin_send(self) -> None:
        self.sending_since = self._clock()

    def end_send(self) -> None:
        self.sending_since = None

    def stuck_for(self, now: float) -> float:
        return 0.0 if self.sending_since is None else now - self.sending_since

    def kill(self, reason: str) -> None:
        """Close the connection from the hub's side; its sender task is cancelled."""
        if self.closed is not None:
            return
        self.closed = reason
        self._items.clear()
        self._droppable.clear()
        self._live = 0
        self._wake.set()
        self.on_kill(self)  # out of the fan-out at once, not when its socket is gone
        if self.task is not None:
            self.task.cancel()


class LiveFeed:
    """Fan-out of feed messages to the connected clients (see the module docstring).

    `snapshot()` returns the `status_update` data: the overall status and one small entry
    per provider (with an `id`), which a `provider` filter narrows.
    """

    def __init__(
        self,
        *,
        snapshot: Callable[[], Awaitable[dict[str, Any]]],
        queue_size: int = 1000,
        status_interval_s: float = 10.0,
        ping_interval_s: float = 30.0,
        stuck_after_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._snapshot = snapshot
        self.queue_size = queue_size
        self.status_interval_s = status_interval_s
        self.ping_interval_s = ping_interval_s
        self.stuck_after_s = stuck_after_s
        self._clock = clock
        self.connections: set[Connection] = set()
        # Called with every message encoded here (not with those from `deliver`): the relay.
        self.forward: Callable[[Message], None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._cached: tuple[float, dict[str, Any]] | None = None
        # Counts status changes seen: a snapshot built across one is not kept.
        self._changes = 0
        self.disconnected_stuck = 0

    # -- events in -----------------------------------------------------------------------

    def observe(self, event: object) -> None:
        """Bus listener: encode the event once and offer it to every connection."""
        if isinstance(event, StatusChange):
            self._forget_snapshot()
        if not self.connections and self.forward is None:
            return  # nobody listens: not even the encoding is paid for
        msg = encode(event)
        if msg is None:
            return
        self.deliver(msg)
        if self.forward is not None:
            self.forward(msg)

    def deliver(self, msg: Message) -> None:
        if msg.type == PROVIDER_STATUS_CHANGE:
            self._forget_snapshot()  # another process's change, through the relay
        for connection in tuple(self.connections):
            connection.offer(msg)

    def _forget_snapshot(self) -> None:
        """A snapshot from before a status change would put the old status back on the
        clients' screens until the next one: it is not reused after a change."""
        self._cached = None
        self._changes += 1

    # -- connections ---------------------------------------------------------------------

    def connect(
        self, *, types: Iterable[str] | None = None, providers: Iterable[str] | None = None
    ) -> Connection:
        connection = Connection(
            types=None if types is None else frozenset(types),
            providers=None if providers is None else frozenset(providers),
            queue_size=self.queue_size,
            clock=self._clock,
        )
        connection.on_kill = self.disconnect
        self.connections.add(connection)
        return connection

    def disconnect(self, connection: Connection) -> None:
        self.connections.discard(connection)

    async def status_message(self, providers: frozenset[str] | None) -> Message:
        """The `status_update` now, its provider list narrowed to `providers` when given."""
        now = self._clock()
        cached = self._cached
        if cached is None or now - cached[0] > SNAPSHOT_TTL_S:
            changes = self._changes
            cached = (now, await self._snapshot())
            if changes == self._changes:
                self._cached = cached
        data = cached[1]
        if providers is not None:
            data = {**data, "providers": [p for p in data["providers"] if p["id"] in providers]}
        return message(STATUS_UPDATE, data)

    # -- timers --------------------------------------------------------------------------

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._every(self.status_interval_s, self.send_status)),
            asyncio.create_task(self._every(self.ping_interval_s, self.send_ping)),
            asyncio.create_task(self._every(min(1.0, self.stuck_after_s / 4), self.sweep)),
        ]

    async def stop(self) -> None:
        await stop_tasks(self._tasks)
        self._tasks = []
        for connection in tuple(self.connections):
            connection.kill("server shutting down")

    async def _every(self, interval_s: float, job: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await job()
            except Exception:
                log.exception("feed_timer_failed", job=getattr(job, "__name__", "?"))

    async def send_status(self) -> None:
        if not self.connections:
            return
        by_filter: dict[frozenset[str] | None, Message] = {}
        for connection in tuple(self.connections):
            if connection.types is not None and STATUS_UPDATE not in connection.types:
                continue
            key = connection.providers
            if key not in by_filter:
                by_filter[key] = await self.status_message(key)
            connection.offer(by_filter[key])

    async def send_ping(self) -> None:
        if self.connections:
            self.deliver(message(PING, {}))

    async def sweep(self) -> None:
        """Disconnect clients whose send has been stuck for `stuck_after_s`."""
        now = self._clock()
        for connection in tuple(self.connections):
            stuck = connection.stuck_for(now)
            if stuck > self.stuck_after_s:
                self.disconnected_stuck += 1
                log.warning("live_client_stuck", stuck_s=round(stuck, 1))
                connection.kill(f"stuck: no message delivered for {stuck:.0f} s")
