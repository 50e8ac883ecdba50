"""Watch apiwatch's live feed and print every provider status change (and alert) as it
happens, with Python's `websockets` (installed with apiwatch).

Run:
    python examples/live_status.py --url ws://127.0.0.1:7860/ws/live --key "$APIWATCH_KEY"

Optional: `--provider binance` (repeatable) to watch some providers only, `--alerts` to
print alerts too, `--count N` to stop after N lines. Reconnects when the connection drops,
except when the key is refused (close code 4401/4403), which is reported and ends it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from urllib.parse import urlencode

import websockets

REFUSED = {4401, 4403, 4400}


def line(message: dict) -> str | None:
    """One printable line for a message, or None for messages not shown."""
    data = message.get("data", {})
    if message.get("type") == "provider_status_change":
        change = f"{data['from']} -> {data['to']}"
        return f"{message['ts']}  {data['provider']:<14} {change}  ({data['reason']})"
    if message.get("type") == "alert":
        return (
            f"{message['ts']}  {data.get('provider') or '-':<14} alert {data['state']}: "
            f"[{data['severity']}] {data['message']}"
        )
    if message.get("type") == "dropped":
        return f"(missed {data['count']} log entries)"
    return None


async def watch(url: str, key: str, providers: list[str], alerts: bool, count: int | None) -> int:
    types = ["provider_status_change", *(["alert"] if alerts else [])]
    query = urlencode([("types", ",".join(types)), *(("provider", p) for p in providers)])
    printed = 0
    # The header form: a program can set headers (a browser would use the subprotocol).
    async for ws in websockets.connect(f"{url}?{query}", additional_headers={"X-API-Key": key}):
        try:
            async for raw in ws:
                text = line(json.loads(raw))
                if text is None:
                    continue
                print(text, flush=True)
                printed += 1
                if count is not None and printed >= count:
                    return 0
        except websockets.ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
            if code in REFUSED:
                reason = closed.rcvd.reason if closed.rcvd else ""
                print(f"refused: {code} {reason}", file=sys.stderr)
                return 2
            print("connection lost; reconnecting", file=sys.stderr)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="ws://127.0.0.1:7860/ws/live")
    parser.add_argument("--key", default=os.environ.get("APIWATCH_KEY", ""))
    parser.add_argument("--provider", action="append", default=[])
    parser.add_argument("--alerts", action="store_true")
    parser.add_argument("--count", type=int, default=None)
    args = parser.parse_args()
    try:
        return asyncio.run(watch(args.url, args.key, args.provider, args.alerts, args.count))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
