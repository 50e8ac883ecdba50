"""Freshness of collected data: how old the data says it is, judged against its category's
TTL (docs/concepts.md). Pure.

The age comes from the timestamp inside the payload, never from when we fetched it: a
provider can answer quickly with yesterday's price. A payload without a timestamp is
`unknown`, which says so instead of pretending.

Clock skew: a data time a little ahead of our clock (up to `FUTURE_TOLERANCE_S`) counts as
age 0, because provider and monitor clocks drift by seconds and a fresh price must not be
doubted for it. A data time further ahead is `unknown`: something is wrong with that
timestamp (a unit mix-up, a broken clock) and calling it fresh would be pretending.

Order books (`judge_book`) have a TTL of seconds but are fetched once a minute, so their
age is judged twice: at the fetch against the book's TTL (was it current when we got
it?), and now against the TTL plus the time to the next collection (is it still being
refreshed?). A book is as fresh as the worse of the two.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from enum import StrEnum


class Freshness(StrEnum):
    FRESH = "fresh"  # age ≤ TTL
    AGING = "aging"  # TTL < age ≤ 2 TTL
    STALE = "stale"  # older than 2 TTL
    UNKNOWN = "unknown"  # no usable timestamp


# Seconds, by category.
DEFAULT_TTL_S: dict[str, float] = {
    "market_data": 300.0,
    "blockchain_explorers": 900.0,
    "news": 3600.0,
    # The Fear & Greed index updates once a day; 2 h of slack for its publication.
    "sentiment": 26 * 3600.0,
    # The placeholders are collected hourly once enabled, so anything tighter than twice
    # that would call data aging between two healthy runs. Their data is block-level (a
    # subgraph's head, Bitcoin's best block, which can be an hour apart) or a 10-minute
    # Glassnode series: four hours behind (stale) means an indexer or feed has stopped.
    "onchain": 2 * 3600.0,
    # Not a category of providers but of items: exchanges' order books (`book:…`), which
    # move many times a second; a book ten seconds old is no longer the market.
    "order_book": 10.0,
}

# Provider clocks run a little ahead of ours now and then; beyond this, it is not drift.
FUTURE_TOLERANCE_S = 300.0


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def age_s(data_time: datetime | None, *, now: datetime) -> float | None:
    """Seconds from the data's own time to `now`; negative when the data time is ahead of
    our clock; None without a timestamp. Naive datetimes are taken as UTC."""
    if data_time is None:
        return None
    return (_aware(now) - _aware(data_time)).total_seconds()


def judge(
    data_time: datetime | None,
    *,
    now: datetime,
    ttl_s: float,
    future_tolerance_s: float = FUTURE_TOLERANCE_S,
) -> Freshness:
    """`fresh` (age ≤ TTL), `aging` (≤ twice the TTL), `stale` (older) or `unknown` (no
    timestamp, or one further in the future than clock skew explains)."""
    if not (math.isfinite(ttl_s) and ttl_s > 0):
        raise ValueError(f"ttl_s must be a positive number of seconds, got {ttl_s!r}")
    age = age_s(data_time, now=now)
    if age is None or age < -future_tolerance_s:
        return Freshness.UNKNOWN
    age = max(age, 0.0)
    if age <= ttl_s:
        return Freshness.FRESH
    if age <= 2 * ttl_s:
        return Freshness.AGING
    return Freshness.STALE


_RANK = {Freshness.FRESH: 0, Freshness.AGING: 1, Freshness.STALE: 2, Freshness.UNKNOWN: 3}


def judge_book(
    data_time: datetime | None,
    *,
    fetched_at: datetime,
    now: datetime,
    ttl_s: float,
    refresh_s: float,
) -> Freshness:
    """A book's freshness: its age when fetched against `ttl_s`, and its age now against
    `ttl_s + refresh_s` (`refresh_s`: the collection interval and its tolerance); the worse
    of the two, so a healthy book stays fresh between two collections on time and turns
    aging, then stale, once collections stop."""
    if not (math.isfinite(refresh_s) and refresh_s >= 0):
        raise ValueError(f"refresh_s must be zero or more seconds, got {refresh_s!r}")
    at_fetch = judge(data_time, now=fetched_at, ttl_s=ttl_s)
    since = judge(data_time, now=now, ttl_s=ttl_s + refresh_s)
    return max(at_fetch, since, key=_RANK.__getitem__)
