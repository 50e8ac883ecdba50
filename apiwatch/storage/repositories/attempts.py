"""Queries over `connection_attempts`: the attempt log, uptime, failure summaries."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from apiwatch.domain import FAILURE_OUTCOMES, Outcome, ProbeResult
from apiwatch.storage.models import ConnectionAttempt
from apiwatch.storage.repositories._rows import columns, row_dict
from apiwatch.storage.repositories.raw_summary import parse_truncated, truncated

_T = ConnectionAttempt.__table__
_C = _T.c

SUCCESS_OUTCOMES = (Outcome.OK.value, Outcome.SLOW.value)
# What the failure views count: the failure outcomes (docs/concepts.md), plus rate limiting,
# which is not a failure for status but is one for anyone asking "why didn't we get data".
FAILING_OUTCOMES = tuple(sorted(o.value for o in (*FAILURE_OUTCOMES, Outcome.RATE_LIMITED)))

# Only the final attempt of each check counts: an at-once retry is part of the same check.
_counted = case(((_C.outcome != Outcome.SKIPPED.value) & _C.final.is_(True), 1), else_=0)
_succeeded = case((_C.outcome.in_(SUCCESS_OUTCOMES) & _C.final.is_(True), 1), else_=0)
_failed = case((_C.outcome.in_(FAILING_OUTCOMES) & _C.final.is_(True), 1), else_=0)


def _filters(
    *,
    provider: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Any]:
    conditions: list[Any] = []
    if provider is not None:
        conditions.append(_C.provider == provider)
    if outcome is not None:
        conditions.append(_C.outcome == str(outcome))
    if since is not None:
        conditions.append(_C.started_at >= since)
    if until is not None:
        conditions.append(_C.started_at < until)
    return conditions


async def list_attempts(
    session: AsyncSession,
    *,
    provider: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """One page of attempts, newest first, and the total number matching the filters.

    `since` is inclusive, `until` exclusive.
    """
    conditions = _filters(provider=provider, outcome=outcome, since=since, until=until)
    total = await session.scalar(select(func.count()).select_from(_T).where(*conditions))
    result = await session.execute(
        select(*columns(_T))
        .where(*conditions)
        .order_by(_C.started_at.desc(), _C.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [row_dict(row) for row in result], int(total or 0)


async def uptime(session: AsyncSession, *, since: datetime) -> dict[str, dict[str, Any]]:
    """Per provider since `since`: `total` attempts, `successes` (ok or slow) and
    `uptime_pct` (None when there is nothing to judge). Skipped probes were never sent, so
    they count neither way; a provider with only skipped probes has total 0."""
    result = await session.execute(
        select(_C.provider, func.sum(_counted), func.sum(_succeeded))
        .where(_C.started_at >= since)
        .group_by(_C.provider)
        .order_by(_C.provider)
    )
    uptimes: dict[str, dict[str, Any]] = {}
    for provider, total, successes in result:
        total, successes = int(total or 0), int(successes or 0)
        uptimes[provider] = {
            "total": total,
            "successes": successes,
            "uptime_pct": 100.0 * successes / total if total else None,
        }
    return uptimes


async def failure_summary(
    session: AsyncSession, *, since: datetime, recent_limit: int = 20
) -> dict[str, Any]:
    """Failures since `since` (failing outcomes: `FAILING_OUTCOMES`).

    - `by_outcome`: {outcome: count} for every failing outcome, zeros included, most first;
    - `top_providers`: up to 10 {provider, failures, total, failure_rate (0..1)}, most
      failures first; `total` excludes skipped probes, as in `uptime`;
    - `recent`: the latest `recent_limit` failing attempts, as `list_attempts` returns them;
    - `total_failures`: the sum of `by_outcome`.
    """
    in_window = _C.started_at >= since
    is_failure = _C.outcome.in_(FAILING_OUTCOMES) & _C.final.is_(True)

    counts = dict.fromkeys(FAILING_OUTCOMES, 0)
    result = await session.execute(
        select(_C.outcome, func.count()).where(in_window, is_failure).group_by(_C.outcome)
    )
    for outcome, count in result:
        counts[outcome] = int(count)
    by_outcome = dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))

    failures = func.sum(_failed).label("failures")
    result = await session.execute(
        select(_C.provider, failures, func.sum(_counted))
        .where(in_window)
        .group_by(_C.provider)
        .having(func.sum(_failed) > 0)
        .order_by(failures.desc(), _C.provider)
        .limit(10)
    )
    top_providers = [
        {
            "provider": provider,
            "failures": int(failed),
            "total": int(total),
            "failure_rate": int(failed) / int(total),
        }
        for provider, failed, total in result
    ]

    result = await session.execute(
        select(*columns(_T))
        .where(in_window, is_failure)
        .order_by(_C.started_at.desc(), _C.id.desc())
        .limit(recent_limit)
    )
    recent = [row_dict(row) for row in result]

    return {
        "by_outcome": by_outcome,
        "top_providers": top_providers,
        "recent": recent,
        "total_failures": sum(counts.values()),
    }


async def last_check_time(session: AsyncSession) -> datetime | None:
    """When the newest attempt (of any outcome, skipped included) started; None if none."""
    return await session.scalar(select(func.max(_C.started_at)))


async def sent_since(
    session: AsyncSession, *, since: datetime
) -> dict[tuple[str, str, str | None], int]:
    """Requests sent (every attempt but the skipped) per (provider, endpoint, key label)
    since `since`: what a restarted process counts against its budgets' current periods."""
    rows = await session.execute(
        select(_C.provider, _C.endpoint, _C.key_label, func.count())
        .where(_C.started_at >= since, _C.outcome != Outcome.SKIPPED.value)
        .group_by(_C.provider, _C.endpoint, _C.key_label)
    )
    return {(provider, endpoint, label): int(count) for provider, endpoint, label, count in rows}


async def outcome_counts(
    session: AsyncSession, *, provider: str, since: datetime, unit: Literal["hour", "day"]
) -> list[dict[str, Any]]:
    """Checks (final attempts, skipped left out) of one provider per hour or day and
    outcome since `since`: {bucket_start, outcome, count}, oldest first. One provider's rows
    by the (provider, started_at) index: a month of them is thousands, not millions."""
    slot = truncated(_C.started_at, session.get_bind().dialect.name, unit).label("slot")
    result = await session.execute(
        select(slot, _C.outcome, func.count())
        .where(
            _C.provider == provider,
            _C.started_at >= since,
            _C.final.is_(True),
            _C.outcome != Outcome.SKIPPED.value,
        )
        .group_by(slot, _C.outcome)
    )
    rows = [
        {"bucket_start": parse_truncated(s), "outcome": outcome, "count": int(count)}
        for s, outcome, count in result
    ]
    rows.sort(key=lambda r: (r["bucket_start"], r["outcome"]))
    return rows


async def recent_results(
    session: AsyncSession, *, providers: list[str], per_provider: int
) -> dict[str, list[ProbeResult]]:
    """The newest `per_provider` final attempts of each provider, oldest first, as results:
    what a status tracker needs to carry on judging a provider probed elsewhere before."""
    out: dict[str, list[ProbeResult]] = {}
    for provider in providers:
        rows = await session.execute(
            select(*columns(_T))
            .where(_C.provider == provider, _C.final.is_(True))
            .order_by(_C.started_at.desc(), _C.id.desc())
            .limit(per_provider)
        )
        results = []
        for row in rows:
            data = row_dict(row)
            try:
                outcome = Outcome(data["outcome"])
            except ValueError:
                continue  # an outcome this version does not know: not evidence
            results.append(
                ProbeResult(
                    provider=provider,
                    endpoint=data["endpoint"],
                    outcome=outcome,
                    started_at=data["started_at"],
                    latency_ms=data["latency_ms"],
                    status_code=data["status_code"],
                    reason=data["reason"] or "",
                    attempt=data["attempt"] or 1,
                    final=True,
                    key_label=data["key_label"],
                    response_bytes=data["response_bytes"],
                    location=data.get("location") or "",
                )
            )
        out[provider] = results[::-1]
    return out
