"""The event bus: in-process publish/subscribe of domain events.

Publishing never blocks the publisher: each subscriber gets its own bounded queue and a slow
subscriber loses its oldest events (counted in `dropped`) rather than stalling probes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any


class Subscription:
    def __init__(self, bus: EventBus, maxsize: int) -> None:
        self._bus = bus
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=maxsize)
        self.dropped = 0

    def offer(self, event: Any) -> None:
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(event)

    async def get(self) -> Any:
        return await self.queue.get()

    def close(self) -> None:
        self._bus.unsubscribe(self)

    async def __aiter__(self) -> AsyncIterator[Any]:
        while True:
            yield await self.queue.get()


class EventBus:
    """Fan-out of events to subscribers; synchronous listeners run inline and must be quick."""

    def __init__(self) -> None:
        self._subscriptions: list[Subscription] = []
        self._listeners: list[Any] = []

    def subscribe(self, *, maxsize: int = 1000) -> Subscription:
        sub = Subscription(self, maxsize)
        self._subscriptions.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with contextlib.suppress(ValueError):
            self._subscriptions.remove(sub)

    def add_listener(self, listener: Any) -> None:
        """`listener(event)` is called inline on publish (e.g. the recorder's enqueue)."""
        self._listeners.append(listener)

    def publish(self, event: Any) -> None:
        for listener in self._listeners:
            listener(event)
        for sub in self._subscriptions:
            sub.offer(event)
