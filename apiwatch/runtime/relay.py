"""Live feed messages across processes, through Redis pub/sub (when `REDIS_URL` is set).

Every process publishes the feed messages its own bus produces (attempts, status changes,
budget alerts, alerts) on one channel and delivers to its WebSocket clients what the other
processes published; so an API process shows what worker processes probe. Messages cross
already encoded, tagged with the publishing process's id, so a process skips its own.

Publishing never blocks the bus: messages wait in a bounded outbox (the oldest dropped past
`max_pending`, counted) and a background task sends them in batches, one PUBLISH per batch.
Pub/sub is fire-and-forget: a process that is down or reconnecting misses what was said
meanwhile, which suits a live view (the REST API has the history). Only the feed is fed from
Redis, with one exception: an API process that probes nothing adopts the workers' status
changes and latest results for display (`feed_status.adopt_remote`); nothing from another
process is judged again or reaches this process's alerting.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

from apiwatch.runtime.feed import LiveFeed
from apiwatch.runtime.feed_messages import Message
from apiwatch.runtime.pubsub import BatchedChannel

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = structlog.get_logger("apiwatch.feed")


class RedisRelay(BatchedChannel):
    name = "live_relay"

    def __init__(
        self,
        redis: Redis,
        feed: LiveFeed,
        *,
        channel: str = "apiwatch:live",
        max_pending: int = 10_000,
    ) -> None:
        super().__init__(redis, channel=channel, max_pending=max_pending)
        self._feed = feed
        # Told of every message from another process (an API process that probes nothing
        # adopts the workers' status changes and latest results through it).
        self.on_remote: Callable[[Message], None] = lambda msg: None

    def publish(self, msg: Message) -> None:
        """The feed's forward hook: queue for the next batch; never blocks."""
        self.queue(msg)

    def batch_payload(self, batch: list[Any]) -> dict[str, Any]:
        return {"m": [[m.type, m.provider, m.text] for m in batch]}

    def take_payload(self, payload: dict[str, Any]) -> int:
        messages = [
            Message(str(t), p if isinstance(p, str) else None, str(x)) for t, p, x in payload["m"]
        ]
        for msg in messages:
            self._feed.deliver(msg)
            try:
                self.on_remote(msg)
            except Exception:
                log.exception("live_relay_remote_hook_failed", type=msg.type)
        return len(messages)
