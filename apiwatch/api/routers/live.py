"""`GET /ws/live`: the live feed over a WebSocket (messages in `runtime.feed_messages`).

The key was checked by the inbound middleware before this runs (header, `apikey.<key>`
subprotocol entry or `api_key` query parameter, all taken out of the scope). Filters come
from `?types=a,b` and `?provider=x` (both repeatable) and may be replaced later by a
`{"subscribe": {"types": [...], "providers": [...]}}` message. A bad filter in the URL
closes with 4400 after an `error` message; a bad message only gets an `error` message.

Each connection runs two tasks: the sender takes from the connection's outbox and writes
to the socket, the receiver reads subscribe messages. The hub cancels the sender of a
stuck client, which ends both.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from apiwatch.runtime import Runtime
from apiwatch.runtime.feed import Connection
from apiwatch.runtime.feed_messages import ERROR, SUBSCRIBED, TYPES, message

router = APIRouter()

BAD_REQUEST = 4400
TOO_SLOW = 1008
GOING_AWAY = 1001
# How long a close may take before the socket is simply dropped (a stuck client never
# reads the close frame).
CLOSE_TIMEOUT_S = 2.0


class FilterError(ValueError):
    pass


def _names(values: Iterable[Any], what: str) -> list[str]:
    names: list[str] = []
    for value in values:
        if not isinstance(value, str):
            raise FilterError(f"{what} must be strings, got {type(value).__name__}")
        names.extend(part.strip() for part in value.split(",") if part.strip())
    return names


def parse_filter(
    runtime: Runtime, types: Iterable[Any] | None, providers: Iterable[Any] | None
) -> tuple[frozenset[str] | None, frozenset[str] | None]:
    """Validated filters; None for a filter not given (or given empty): no narrowing."""
    wanted_types = _names(types or (), "types")
    unknown = sorted(set(wanted_types) - set(TYPES))
    if unknown:
        raise FilterError(f"unknown type {unknown[0]!r}; known: {', '.join(TYPES)}")
    wanted_providers = _names(providers or (), "providers")
    unknown = sorted(set(wanted_providers) - set(runtime.catalogue.providers))
    if unknown:
        known = ", ".join(sorted(runtime.catalogue.providers))
        raise FilterError(f"unknown provider {unknown[0]!r}; known: {known}")
    return (
        frozenset(wanted_types) if wanted_types else None,
        frozenset(wanted_providers) if wanted_providers else None,
    )


def _error(detail: str) -> str:
    return message(ERROR, {"detail": detail}).text


def _subscribed(connection: Connection) -> str:
    data = {
        "types": None if connection.types is None else sorted(connection.types),
        "providers": None if connection.providers is None else sorted(connection.providers),
    }
    return message(SUBSCRIBED, data).text


def _close_reason(text: str) -> str:
    # A close frame's reason is at most 123 bytes of UTF-8.
    raw = text.encode()
    return text if len(raw) <= 123 else raw[:120].decode(errors="ignore") + "..."


@router.websocket("/ws/live")
async def live(websocket: WebSocket) -> None:
    runtime: Runtime = websocket.app.state.runtime
    feed = runtime.feed
    offered = websocket.scope.get("subprotocols") or []
    await websocket.accept(subprotocol=offered[0] if offered else None)
    params = websocket.query_params
    try:
        types, providers = parse_filter(
            runtime, params.getlist("types"), params.getlist("provider")
        )
    except FilterError as error:
        await websocket.send_text(_error(str(error)))
        await websocket.close(BAD_REQUEST, _close_reason(str(error)))
        return
    connection = feed.connect(types=types, providers=providers)
    try:
        # The picture right away, not in up to ten seconds (when the filter wants it).
        connection.offer(await feed.status_message(providers))
        sender = asyncio.create_task(_send(websocket, connection))
        connection.task = sender
        receiver = asyncio.create_task(_receive(websocket, runtime, connection))
        await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
        for task in (sender, receiver):
            task.cancel()
        for task in (sender, receiver):
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await task
        if connection.closed is not None:
            code = GOING_AWAY if connection.closed == "server shutting down" else TOO_SLOW
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    websocket.close(code, _close_reason(connection.closed)), CLOSE_TIMEOUT_S
                )
    finally:
        feed.disconnect(connection)


async def _send(websocket: WebSocket, connection: Connection) -> None:
    while (text := await connection.next()) is not None:
        connection.begin_send()
        await websocket.send_text(text)
        connection.end_send()


async def _receive(websocket: WebSocket, runtime: Runtime, connection: Connection) -> None:
    """Read subscribe messages until the client goes away."""
    while True:
        incoming = await websocket.receive()
        if incoming["type"] == "websocket.disconnect":
            return
        text = incoming.get("text")
        if text is None:
            connection.push(_error("send text frames with JSON"))
            continue
        try:
            request = json.loads(text)
        except ValueError:
            connection.push(_error('not JSON; expected {"subscribe": {...}}'))
            continue
        if not isinstance(request, dict) or not isinstance(request.get("subscribe"), dict):
            connection.push(_error('expected {"subscribe": {"types": [...], "providers": [...]}}'))
            continue
        wanted = request["subscribe"]
        extra = sorted(set(wanted) - {"types", "providers"})
        try:
            if extra:
                raise FilterError(f"unknown field {extra[0]!r}; known: types, providers")
            types, providers = parse_filter(
                runtime, _as_list(wanted.get("types")), _as_list(wanted.get("providers"))
            )
        except FilterError as error:
            connection.push(_error(str(error)))
            continue
        connection.types, connection.providers = types, providers
        connection.push(_subscribed(connection))


def _as_list(value: Any) -> list[Any] | None:
    if value is None:
        return None
    return value if isinstance(value, list) else [value]
