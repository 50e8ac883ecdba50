"""A polite client of an API protected by apiwatch: it sends `X-API-Key`, reads the
`X-RateLimit-*` headers, slows down when a window is nearly used up, and on 429 waits
`Retry-After` seconds and tries again. Standard library only.

Run:
    python examples/client.py --url http://127.0.0.1:8000 --key "$EXAMPLE_API_KEY" \\
        --path /api/products --requests 20

Prints one line per event and a JSON summary last; exits 1 if a request never succeeded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

WINDOWS = ("minute", "hour", "day")


@dataclass
class Summary:
    requests: int = 0
    ok: int = 0
    rate_limited: int = 0
    slowed: int = 0
    waited_s: float = 0.0
    failed: int = 0
    statuses: list[int] = field(default_factory=list)


def pause_for(headers: Mapping[str, str], *, low_fraction: float = 0.1) -> float:
    """Seconds to pause before the next request, from one response's X-RateLimit-* headers
    (names in lower case).

    While every window has more than `low_fraction` of its limit left: none. When one runs
    low, spread what is left over the time until it resets, so the client arrives at the
    reset instead of at a 429. The tightest window wins."""
    pause = 0.0
    for window in WINDOWS:
        try:
            limit = int(headers[f"x-ratelimit-{window}-limit"])
            remaining = int(headers[f"x-ratelimit-{window}-remaining"])
            reset = float(headers[f"x-ratelimit-{window}-reset"])  # seconds from now
        except (KeyError, ValueError):
            continue
        if remaining <= max(1, int(limit * low_fraction)):
            pause = max(pause, reset / (remaining + 1))
    return pause


def retry_after(headers: Mapping[str, str], default: float = 1.0) -> float:
    """Seconds to wait after a 429: the server's Retry-After (in seconds), else `default`."""
    try:
        return max(float(headers["retry-after"]), 0.0)
    except (KeyError, ValueError):
        return default


def get(url: str, key: str, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """GET `url` with the key: (status, headers with lower-case names, body)."""
    if not url.startswith(("http://", "https://")):
        raise ValueError("the URL must be http:// or https://")
    request = urllib.request.Request(url, headers={"X-API-Key": key})  # noqa: S310 (checked)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, _lower(response.headers.items()), response.read()
    except urllib.error.HTTPError as error:
        return error.code, _lower(error.headers.items()), error.read()


def _lower(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    # Header names are case-insensitive; servers (uvicorn) send them in lower case.
    return {name.lower(): value for name, value in items}


def run(
    *,
    url: str,
    key: str,
    requests: int,
    max_retries: int = 5,
    sleep: Callable[[float], None] = time.sleep,
    say: Callable[[str], None] = print,
) -> Summary:
    summary = Summary()
    for number in range(1, requests + 1):
        for attempt in range(max_retries + 1):
            status, headers, body = get(url, key)
            summary.requests += 1
            summary.statuses.append(status)
            if status != 429:
                break
            summary.rate_limited += 1
            wait = retry_after(headers)
            detail = json.loads(body or b"{}").get("detail", "")
            say(f"request {number}: 429 ({detail}); waiting {wait:g} s (Retry-After)")
            if attempt == max_retries:
                break
            sleep(wait)
            summary.waited_s += wait
        if 200 <= status < 300:
            summary.ok += 1
            pause = pause_for(headers)
            remaining = headers.get("x-ratelimit-minute-remaining", "?")
            say(f"request {number}: {status}, minute remaining {remaining}")
            if pause and number < requests:
                summary.slowed += 1
                say(f"request {number}: a window is nearly used up; pausing {pause:.2f} s")
                sleep(pause)
                summary.waited_s += pause
        else:
            summary.failed += 1
            say(f"request {number}: gave up with {status}: {body[:200]!r}")
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description="A polite client of an apiwatch-guarded API.")
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--path", default="/api/products")
    parser.add_argument("--key", default=os.environ.get("EXAMPLE_API_KEY"))
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--max-retries", type=int, default=5)
    args = parser.parse_args()
    if not args.key:
        parser.error("give --key or set EXAMPLE_API_KEY")
    summary = run(
        url=args.url.rstrip("/") + args.path,
        key=args.key,
        requests=args.requests,
        max_retries=args.max_retries,
    )
    fields = {k: v for k, v in vars(summary).items() if k != "statuses"}
    print(json.dumps({**fields, "waited_s": round(summary.waited_s, 2)}), flush=True)
    return 0 if summary.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
