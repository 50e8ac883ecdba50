"""Alert inputs across processes: when several processes share the work, only the leader
evaluates alert rules, so the others send it what the rules read — every probe result
(without its payload), every status change, every guard and data event — through Redis
pub/sub. The leader feeds what it receives into its alert manager as if it were local.

Events cross as JSON: results and status changes whole (rebuilt as `ProbeResult` and
`StatusChange`); other events as their class name and fields (`RemoteEvent`), which is all
the rule engine reads of them. Publishing never blocks: a bounded outbox, sent in batches
(`pubsub.BatchedChannel`).
Like any pub/sub, what is said while the leader is changing hands can be missed; the new
leader restores the firing alerts from the database and re-judges from the next results.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any

from apiwatch.domain import Outcome, ProbeResult, Status, StatusChange
from apiwatch.runtime.pubsub import BatchedChannel

if TYPE_CHECKING:
    from redis.asyncio import Redis


@dataclasses.dataclass(frozen=True)
class RemoteEvent:
    """A guard or data event from another process: its class name and its fields."""

    type_name: str
    data: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return dict(self.data)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return value


def encode(event: object) -> list[Any] | None:
    """An event as [type, fields], or None for what the rules never read."""
    if isinstance(event, ProbeResult):
        fields = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
        fields.pop("payload", None)
        fields.pop("headers", None)
        fields.pop("certificate", None)  # the runtime announces it as its own event
        return ["result", _plain(fields)]
    if isinstance(event, StatusChange):
        return ["status", _plain(dataclasses.asdict(event))]
    as_dict = getattr(event, "as_dict", None)
    if callable(as_dict):
        return ["event", type(event).__name__, _plain(as_dict())]
    if dataclasses.is_dataclass(event) and not isinstance(event, type):
        return ["event", type(event).__name__, _plain(dataclasses.asdict(event))]
    return None


def decode(item: list[Any]) -> object:
    kind = item[0]
    if kind == "result":
        data = dict(item[1])
        data["outcome"] = Outcome(data["outcome"])
        data["started_at"] = datetime.fromisoformat(data["started_at"])
        return ProbeResult(**data)
    if kind == "status":
        data = dict(item[1])
        return StatusChange(
            provider=data["provider"],
            old=Status(data["old"]),
            new=Status(data["new"]),
            reason=data["reason"],
            at=datetime.fromisoformat(data["at"]),
        )
    if kind == "event":
        return RemoteEvent(str(item[1]), dict(item[2]))
    raise ValueError(f"unknown alert input {kind!r}")


class AlertRelay(BatchedChannel):
    """Publishes this process's alert inputs while it does not lead; delivers the others'
    to `deliver` while it does."""

    name = "alert_relay"

    def __init__(
        self,
        redis: Redis,
        *,
        channel: str,
        leading: Callable[[], bool],
        deliver: Callable[[object], None],
        max_pending: int = 50_000,
    ) -> None:
        super().__init__(redis, channel=channel, max_pending=max_pending)
        self._leading = leading
        self._deliver = deliver

    def observe(self, event: object) -> None:
        """Bus listener: queue what the leader's rules need, unless this process leads."""
        if self._leading():
            return
        item = encode(event)
        if item is not None:
            self.queue(item)

    def batch_payload(self, batch: list[Any]) -> dict[str, Any]:
        return {"e": batch}

    def take_payload(self, payload: dict[str, Any]) -> int:
        if not self._leading():
            return 0
        events = [decode(item) for item in payload["e"]]
        for event in events:
            self._deliver(event)
        return len(events)
