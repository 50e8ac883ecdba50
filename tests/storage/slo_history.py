"""A known vendor history for the SLO tests: attempts, status changes, silences and alerts
with outages of known length, and an oracle that counts SLO events straight from the
generated rows (no SQL, no roll-ups), so every figure apiwatch computes can be checked."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from apiwatch.analysis.rollups import LADDER
from apiwatch.catalogue.loader import Catalogue, load_catalogue
from apiwatch.catalogue.schema import ObjectiveSpec
from apiwatch.storage.models import TABLES
from apiwatch.storage.repositories import raw_summary, rollups

# Not on an hour: every window has partial first and last hours.
NOW = datetime(2026, 11, 30, 12, 34, 56, tzinfo=UTC)
STEP = timedelta(minutes=10)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
# binance: a 2-hour outage (server errors) on Nov 20 08:00, a recent one (timeouts) from
# NOW-50 min to NOW-10 min, six rate-limited checks on Nov 10 03:00.
OUTAGE = (datetime(2026, 11, 20, 8, 0, tzinfo=UTC), datetime(2026, 11, 20, 10, 0, tzinfo=UTC))
RECENT = (NOW - timedelta(minutes=50), NOW - timedelta(minutes=10))
THROTTLED = (datetime(2026, 11, 10, 3, 0, tzinfo=UTC), datetime(2026, 11, 10, 4, 0, tzinfo=UTC))
# Maintenance: one silence inside the outage (two partial hours), one over two whole hours.
SILENCES = [
    ({"provider": "binance"}, datetime(2026, 11, 20, 8, 35, tzinfo=UTC),
     datetime(2026, 11, 20, 9, 25, tzinfo=UTC)),
    ({"provider": "bin*"}, datetime(2026, 11, 15, 0, 0, tzinfo=UTC),
     datetime(2026, 11, 15, 2, 0, tzinfo=UTC)),
    # Narrowed by rule: mutes a noise, excludes nothing.
    ({"provider": "binance", "rule": "error_rate"}, datetime(2026, 11, 12, tzinfo=UTC),
     datetime(2026, 11, 13, tzinfo=UTC)),
]  # fmt: skip
GOOD_MS, BAD_MS = 100.0, 900.0


@dataclass
class History:
    attempts: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)

    def add(self, provider: str, at: datetime, outcome: str, latency: float | None, **extra: Any):
        self.attempts.append(
            {
                "provider": provider,
                "endpoint": extra.pop("endpoint", "health"),
                "outcome": outcome,
                "latency_ms": latency,
                "final": extra.pop("final", True),
                "attempt": extra.pop("attempt", 1),
                "started_at": at,
                "reason": "",
            }
        )

    def change(self, provider: str, at: datetime, old: str, new: str, reason: str) -> None:
        self.changes.append(
            {
                "provider": provider,
                "old_status": old,
                "new_status": new,
                "reason": reason,
                "changed_at": at,
            }
        )


def inside(at: datetime, span: tuple[datetime, datetime]) -> bool:
    return span[0] <= at < span[1]


def build() -> History:
    history = History()
    # binance: every 10 minutes for 31 days, health and one data endpoint alternately.
    at = datetime(2026, 10, 30, 0, 0, tzinfo=UTC)
    n = 0
    while at < NOW:
        endpoint = "health" if n % 2 == 0 else "ticker_24hr"
        if inside(at, OUTAGE):
            # An at-once retry before the final attempt: not an event.
            history.add("binance", at, "server_error", BAD_MS, final=False, endpoint=endpoint)
            history.add("binance", at, "server_error", BAD_MS, attempt=2, endpoint=endpoint)
        elif inside(at, RECENT):
            history.add("binance", at, "timeout", BAD_MS, endpoint=endpoint)
        elif inside(at, THROTTLED):
            history.add("binance", at, "rate_limited", 50.0, endpoint=endpoint)
        else:
            history.add("binance", at, "ok" if n % 7 else "slow", GOOD_MS, endpoint=endpoint)
        at += STEP
        n += 1
    # Skipped probes (budget) are not events.
    for minute in range(0, 60, 5):
        history.add("binance", datetime(2026, 11, 11, 5, minute, tzinfo=UTC), "skipped", None)
    # coingecko: every 30 minutes, always fine. etherscan: 95 days, every 30 minutes,
    # failing one check in ten (missing a 99.5 % objective in every window).
    at = NOW - 30 * DAY
    while at < NOW:
        history.add("coingecko", at, "ok", 40.0)
        at += timedelta(minutes=30)
    at, n = NOW - 95 * DAY, 0
    while at < NOW:
        history.add("etherscan", at, "connection_error" if n % 10 == 0 else "ok", 200.0)
        at += timedelta(minutes=30)
        n += 1
    # binance's status: online since October; the Nov 20 outage (degraded, then offline),
    # a short incident on Nov 25, and one that straddles the 30-day window's start.
    o, d, f = "online", "degraded", "offline"
    history.change("binance", datetime(2026, 10, 1, tzinfo=UTC), "unknown", o, "healthy")
    straddle = NOW - 30 * DAY
    history.change("binance", straddle - HOUR, o, d, "1 consecutive failure; last: timeout")
    history.change("binance", straddle + HOUR, d, o, "healthy")
    history.change("binance", OUTAGE[0], o, d, "1 consecutive failure; last: server_error (503)")
    history.change("binance", OUTAGE[0] + timedelta(minutes=20), d, f, "3 consecutive failures")
    history.change("binance", OUTAGE[1], f, o, "healthy")
    history.change("binance", datetime(2026, 11, 25, 6, 0, tzinfo=UTC), o, d, "rate limited")
    history.change("binance", datetime(2026, 11, 25, 6, 15, tzinfo=UTC), d, "unknown", "not probed")
    history.change("binance", datetime(2026, 11, 25, 6, 45, tzinfo=UTC), "unknown", o, "healthy")
    return history  # fmt: skip


def catalogue() -> Catalogue:
    """The built-in catalogue with binance holding a published SLA of 99.9 % and a p95
    objective of 500 ms for its ticker endpoint."""
    base = load_catalogue()
    providers = dict(base.providers)
    binance = providers["binance"]
    ticker = binance.endpoints["ticker_24hr"].model_copy(
        update={"objectives": ObjectiveSpec(latency_p95_ms=500)}
    )
    providers["binance"] = binance.model_copy(
        update={
            "objectives": ObjectiveSpec(sla=99.9),
            "endpoints": {**binance.endpoints, "ticker_24hr": ticker},
        }
    )
    return Catalogue(providers=providers, sources=base.sources)


def maintenance(provider: str) -> list[tuple[datetime, datetime]]:
    spans = []
    for matchers, start, end in SILENCES:
        if set(matchers) == {"provider"} and provider.startswith(matchers["provider"].rstrip("*")):
            spans.append((start, end))
    return spans


def oracle(
    history: History,
    provider: str,
    start: datetime,
    end: datetime,
    *,
    endpoint: str | None = None,
    exclude: bool = True,
) -> dict[str, Any]:
    """Good, bad and throttled final attempts in [start, end), counted row by row."""
    counts = {"good": 0, "bad": 0, "throttled": 0, "latencies": []}
    spans = maintenance(provider) if exclude else []
    for row in history.attempts:
        if row["provider"] != provider or not row["final"]:
            continue
        if endpoint is not None and row["endpoint"] != endpoint:
            continue
        at = row["started_at"]
        if not start <= at < end or any(inside(at, s) for s in spans):
            continue
        if row["outcome"] in ("ok", "slow"):
            counts["good"] += 1
            counts["latencies"].append(row["latency_ms"])
        elif row["outcome"] == "rate_limited":
            counts["throttled"] += 1
        elif row["outcome"] != "skipped":
            counts["bad"] += 1
            counts["latencies"].append(row["latency_ms"])
    return counts


async def store(sessions: async_sessionmaker[AsyncSession], history: History) -> None:
    """Write the history, the silences and one alert raised in the Nov 20 outage, then roll
    the attempts up as the running monitor would have."""
    async with sessions() as session, session.begin():
        await session.execute(insert(TABLES["connection_attempts"]), history.attempts)
        await session.execute(insert(TABLES["status_changes"]), history.changes)
        await session.execute(
            insert(TABLES["silences"]),
            [
                {
                    "matchers": m,
                    "starts_at": s,
                    "ends_at": e,
                    "created_by": "test",
                    "comment": "maintenance",
                    "created_at": s,
                }
                for m, s, e in SILENCES
            ],
        )
        await session.execute(
            insert(TABLES["alerts"]),
            [
                {
                    "rule": "provider_status",
                    "provider": "binance",
                    "severity": "critical",
                    "message": "binance is offline",
                    "state": "resolved",
                    "fingerprint": "provider_status:binance:critical",
                    "labels": None,  # every row names the same columns
                    "fired_at": OUTAGE[0] + timedelta(minutes=20),
                    "resolved_at": OUTAGE[1],
                    "notifications": 1,
                    "decision_reason": "",
                },
                # Divergence, counted by the scorecard: prices (data_divergent) and order
                # books (book_integrity with check cross_venue); a crossed book is not.
                *(
                    {
                        "rule": rule,
                        "provider": provider,
                        "severity": "warning",
                        "message": f"{rule} {check}",
                        "state": "resolved",
                        "fingerprint": f"{rule}:{provider}:warning:BTC-USDT:{check}",
                        "labels": {"check": check, "item": "BTC-USDT"} if check else None,
                        "fired_at": datetime(2026, 11, 15, hour, tzinfo=UTC),
                        "resolved_at": datetime(2026, 11, 15, hour, 30, tzinfo=UTC),
                        "notifications": 1,
                        "decision_reason": "",
                    }
                    for rule, provider, check, hour in (
                        ("book_integrity", "binance", "cross_venue", 1),
                        ("book_integrity", "binance", "cross_venue", 3),
                        ("book_integrity", "binance", "crossed", 5),
                        ("data_divergent", "coingecko", "", 7),
                    )
                ),
                {
                    "rule": "data_stale",
                    "provider": "etherscan",
                    "severity": "warning",
                    "message": "stale",
                    "state": "resolved",
                    "fingerprint": "data_stale:etherscan:warning:ETH-gas",
                    "labels": None,  # every row names the same columns
                    "fired_at": NOW - 2 * DAY,
                    "resolved_at": NOW - 2 * DAY + timedelta(minutes=5),
                    "notifications": 1,
                    "decision_reason": "",
                },
            ],
        )
    async with sessions() as session:
        for kind in raw_summary.KINDS:
            await rollups.roll_up(
                session, kind=kind, start=NOW - 100 * DAY, end=NOW, ladder=LADDER, now=NOW
            )


HISTORY = build()
