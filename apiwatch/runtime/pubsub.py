"""One Redis pub/sub channel shared by apiwatch's processes: what a process queues goes out
in batches (one PUBLISH per batch, never blocking the caller), and what the others publish
comes back to it, its own messages skipped by an origin tag.

The live feed's relay and the alert-input relay are both this, with their own encoding.
Pub/sub is fire-and-forget: a process that is down or reconnecting misses what was said
meanwhile; a failing Redis is retried with a growing pause and logged once per outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import deque
from typing import TYPE_CHECKING, Any

import structlog

from apiwatch.stopping import stop_tasks

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = structlog.get_logger("apiwatch.pubsub")

BATCH = 500
RETRY_S = (0.5, 1.0, 2.0, 5.0)


class BatchedChannel:
    """Subclasses say how a batch is written (`batch_payload`) and what to do with another
    process's payload (`take_payload`); `queue` adds an item to the next batch."""

    name = "pubsub"

    def __init__(self, redis: Redis, *, channel: str, max_pending: int) -> None:
        self._redis = redis
        self.channel = channel
        self.origin = uuid.uuid4().hex
        self._pending: deque[Any] = deque(maxlen=max_pending)
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._subscribed = asyncio.Event()
        self.published = 0
        self.received = 0
        self.dropped = 0
        self.failures = 0

    def batch_payload(self, batch: list[Any]) -> dict[str, Any]:
        raise NotImplementedError

    def take_payload(self, payload: dict[str, Any]) -> int:
        """Deliver another process's payload; returns how many items it held."""
        raise NotImplementedError

    def queue(self, item: Any) -> None:
        if len(self._pending) == self._pending.maxlen:
            self.dropped += 1  # the deque drops the oldest as this one goes in
        self._pending.append(item)
        self._wake.set()

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._send_loop(), name=f"{self.name}-publish"),
            asyncio.create_task(self._listen_loop(), name=f"{self.name}-listen"),
        ]
        # Subscribed before the process reports itself started, so nothing said after that
        # is missed; a Redis that is down does not hold the start up for long.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), 5.0)

    async def stop(self) -> None:
        await stop_tasks(self._tasks)
        self._tasks = []

    async def _send_loop(self) -> None:
        failures = 0
        while True:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
            batch = [self._pending.popleft() for _ in range(min(BATCH, len(self._pending)))]
            payload = json.dumps(
                {"o": self.origin, **self.batch_payload(batch)}, separators=(",", ":")
            )
            try:
                await self._redis.publish(self.channel, payload)
            except Exception as error:
                self.failures += 1
                self.dropped += len(batch)
                if failures == 0:
                    log.warning(f"{self.name}_publish_failed", error=type(error).__name__)
                await asyncio.sleep(RETRY_S[min(failures, len(RETRY_S) - 1)])
                failures += 1
                continue
            failures = 0
            self.published += len(batch)

    async def _listen_loop(self) -> None:
        failures = 0
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self._subscribed.set()
                if failures:
                    log.info(f"{self.name}_resubscribed")
                failures = 0
                async for raw in pubsub.listen():
                    self._take(raw)
                raise ConnectionError("subscription ended")
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if failures == 0:
                    log.warning(f"{self.name}_listen_failed", error=type(error).__name__)
                await asyncio.sleep(RETRY_S[min(failures, len(RETRY_S) - 1)])
                failures += 1
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def _take(self, raw: dict[str, Any]) -> None:
        if raw.get("type") != "message":
            return
        try:
            payload = json.loads(raw["data"])
            if payload.get("o") == self.origin:
                return
            self.received += self.take_payload(payload)
        except (ValueError, KeyError, TypeError, AttributeError, IndexError):
            log.warning(f"{self.name}_bad_message", channel=self.channel)
