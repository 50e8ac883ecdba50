"""How a WebSocket handshake carries an API key, and how a refused one is closed.

Browsers cannot set headers on a WebSocket, so besides the `X-API-Key` header a key may come
as a `Sec-WebSocket-Protocol` entry `apikey.<key>` (offered next to a real subprotocol such
as `apiwatch`) or as an `api_key` query parameter. Whichever carried it, the key is taken out
of the scope before the app (or anything that logs the scope) sees it: the app is offered
only the other subprotocols and gets the query string without `api_key`.

A refusal accepts the handshake and closes at once with an application close code, because
a handshake refused with an HTTP status reaches a browser only as an anonymous 1006:
4401 (no key, or an unknown one), 4403 (inactive key, or an admin route), 4429 (too
many failed attempts from the address) and 4503 (the key cannot be checked now: the
database does not answer). The close reason says which.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

Message = MutableMapping[str, Any]

PROTOCOL_PREFIX = "apikey."
QUERY_PARAM = "api_key"
HEADER = b"x-api-key"

UNAUTHENTICATED = 4401
FORBIDDEN = 4403
TOO_MANY = 4429
UNAVAILABLE = 4503


def take_key(scope: MutableMapping[str, Any]) -> bytes | None:
    """The key the handshake carries (header first, then subprotocol, then query), removed
    from the scope's subprotocols and query string; None when there is none."""
    key: bytes | None = None
    for name, value in scope.get("headers", ()):
        if name == HEADER and value:
            key = value
            break
    protocols: list[str] = list(scope.get("subprotocols") or ())
    kept = [p for p in protocols if not p.startswith(PROTOCOL_PREFIX)]
    if len(kept) != len(protocols):
        scope["subprotocols"] = kept
        if key is None:
            entry = next(p for p in protocols if p.startswith(PROTOCOL_PREFIX))
            key = entry[len(PROTOCOL_PREFIX) :].encode() or None
    query: bytes = scope.get("query_string") or b""
    if QUERY_PARAM.encode() in query:
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
        rest = [(k, v) for k, v in pairs if k != QUERY_PARAM]
        if len(rest) != len(pairs):
            scope["query_string"] = urlencode(rest).encode("latin-1")
            if key is None:
                value = next(v for k, v in pairs if k == QUERY_PARAM)
                key = value.encode("latin-1") or None
    return key


async def close_refused(
    scope: MutableMapping[str, Any],
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
    code: int,
    reason: str,
) -> None:
    """Accept the handshake (choosing the first subprotocol offered besides the key, so a
    browser keeps the connection long enough to read the code) and close with `code`."""
    message = await receive()
    if message.get("type") != "websocket.connect":
        return  # the client went away before the handshake finished
    offered = scope.get("subprotocols") or []
    accept: Message = {"type": "websocket.accept"}
    if offered:
        accept["subprotocol"] = offered[0]
    await send(accept)
    await send({"type": "websocket.close", "code": code, "reason": reason})
