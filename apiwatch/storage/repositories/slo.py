"""What SLOs, incidents and the scorecard read: SLO events per provider and endpoint over any
span, status changes around a window, and the alerts fired in it.

Events come from the `check` and `throttle` roll-ups (final attempts; the rules are in
`apiwatch.analysis.slo`): whole settled hours from `hourly_rollups`, the live hours and the
partial hours at either edge of the span from raw rows, so a span's figures are exact to the
second and cost the same at ten million attempts as at a thousand. Maintenance windows are
taken out the same way: hours they cover whole are dropped, the rest is counted from raw
rows and subtracted (once retention has deleted those raw rows, only the whole hours can be
taken out).
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from apiwatch.storage.models import Alert, StatusChangeRow
from apiwatch.storage.repositories._rows import row_dict
from apiwatch.storage.repositories.charts import hourly_series
from apiwatch.storage.repositories.raw_summary import (
    HOUR,
    Kind,
    Ladder,
    Series,
    aggregate,
    ceil_to,
    floor_to,
)
from apiwatch.storage.repositories.slo_counts import window_counts

_SC = StatusChangeRow.__table__.c
_AL = Alert.__table__.c

Span = tuple[datetime, datetime]
Key = tuple[str, str]  # (provider, endpoint)


Row = tuple[str, str, datetime, Series]  # (provider, endpoint, hour, figures)


async def _raw(
    session: AsyncSession,
    kind: Kind,
    span: Span,
    ladder: Ladder,
    providers: Sequence[str] | None,
    histograms: bool = True,
) -> list[Row]:
    if span[0] >= span[1]:
        return []
    found = await aggregate(
        session,
        kind=kind,
        start=span[0],
        end=span[1],
        ladder=ladder,
        subjects=providers,
        histograms=histograms,
    )
    return [(p, e, hour, s) for (p, e, hour), s in found.items()]


@dataclass
class _Windows:
    """The rows of several windows ending together: `shared` (whole hours and the partial
    last hour, read once), and per start its own partial first hour (`heads`) and the first
    whole hour it takes from `shared` (`firsts`; None when it lies in the last hour)."""

    shared: list[Row]
    heads: dict[datetime, list[Row]]
    firsts: dict[datetime, datetime | None]

    def rows(self, start: datetime, provider: str | None = None) -> list[Row]:
        first = self.firsts[start]
        mine = [] if first is None else [r for r in self.shared if r[2] >= first]
        rows = self.heads[start] + mine
        return rows if provider is None else [r for r in rows if r[0] == provider]


async def _read_windows(
    session: AsyncSession,
    *,
    kind: Kind,
    starts: Sequence[datetime],
    end: datetime,
    now: datetime,
    ladder: Ladder,
    providers: Sequence[str] | None,
    histograms: bool = True,
) -> _Windows:
    whole_to = floor_to(end, HOUR)
    uses_hours = [s for s in starts if ceil_to(s, HOUR) <= whole_to]
    shared: list[Row] = []
    if uses_hours:
        whole_from = ceil_to(min(uses_hours), HOUR)
        if whole_from < whole_to:
            shared = await hourly_series(
                session,
                kind=kind,
                start=whole_from,
                end=whole_to,
                now=now,
                ladder=ladder,
                subjects=providers,
                histograms=histograms,
            )
        shared += await _raw(session, kind, (whole_to, end), ladder, providers, histograms)
    heads: dict[datetime, list[Row]] = {}
    firsts: dict[datetime, datetime | None] = {}
    for start in starts:
        first = ceil_to(start, HOUR)
        if first <= whole_to:
            heads[start] = await _raw(session, kind, (start, first), ladder, providers, histograms)
            firsts[start] = first
        else:  # the whole window lies inside the last, partial hour
            heads[start] = await _raw(session, kind, (start, end), ladder, providers, histograms)
            firsts[start] = None
    return _Windows(shared, heads, firsts)


@dataclass
class _Suffixes:
    """Per series, sums of `shared` from each hour to the end, so that every window's part
    of it costs one lookup instead of a pass over thousands of hours."""

    hours: list[datetime]
    count: list[int]
    errors: list[int]
    hists: list[list[int]]

    def since(self, first: datetime) -> Series:
        i = bisect.bisect_left(self.hours, first)
        return Series(self.count[i], self.errors[i], 0.0, [self.hists[i]])


def _suffixes(rows: list[Row], ladder: Ladder) -> dict[Key, _Suffixes]:
    per_key: dict[Key, list[Row]] = {}
    for row in rows:
        per_key.setdefault((row[0], row[1]), []).append(row)
    out = {}
    for key, items in per_key.items():
        items.sort(key=lambda row: row[2])
        n = len(items)
        count, errors = [0] * (n + 1), [0] * (n + 1)
        hists: list[list[int]] = [[0] * ladder.size] * (n + 1)
        for i in range(n - 1, -1, -1):
            figures = items[i][3]
            count[i] = count[i + 1] + figures.count
            errors[i] = errors[i + 1] + figures.errors
            hist = hists[i + 1]
            for one in figures.hists:
                # map() adds in C; a list of another length (an older scheme) goes the slow way.
                same = len(one) == len(hist)
                hist = list(map(operator.add, hist, one)) if same else ladder.merge([hist, one])
            hists[i] = hist
        out[key] = _Suffixes([row[2] for row in items], count, errors, hists)
    return out


async def _window_sums(
    session: AsyncSession,
    *,
    kind: Kind,
    windows: _Windows,
    end: datetime,
    ladder: Ladder,
    excluded: Mapping[str, Sequence[Span]],
) -> dict[datetime, dict[Key, Series]]:
    """Per start, the window's figures per series. A provider with maintenance in the
    window is summed row by row (`_sum_excluding`); the others from the suffix sums."""
    suffixes = _suffixes(windows.shared, ladder)
    out: dict[datetime, dict[Key, Series]] = {}
    for start, first in windows.firsts.items():
        sums: dict[Key, Series] = {}
        if first is not None:
            for key, suffix in suffixes.items():
                part = suffix.since(first)
                if part.count:
                    sums[key] = part
        for provider, endpoint, _hour, figures in windows.heads[start]:
            sums.setdefault((provider, endpoint), Series()).absorb(figures)
        for provider, spans in excluded.items():
            if not any(a < end and b > start for a, b in spans):
                continue
            sums = {k: v for k, v in sums.items() if k[0] != provider}
            sums.update(
                await _sum_excluding(
                    session,
                    kind=kind,
                    rows=windows.rows(start, provider),
                    start=start,
                    end=end,
                    ladder=ladder,
                    excluded={provider: spans},
                )
            )
        out[start] = sums
    return out


def _hour_pieces(span: Span, start: datetime, end: datetime) -> list[Span]:
    """`span` clipped to [start, end) and cut at hour boundaries."""
    lo, hi = max(span[0], start), min(span[1], end)
    pieces = []
    while lo < hi:
        cut = min(hi, floor_to(lo, HOUR) + HOUR)
        pieces.append((lo, cut))
        lo = cut
    return pieces


async def _sum_excluding(
    session: AsyncSession,
    *,
    kind: Kind,
    rows: list[Row],
    start: datetime,
    end: datetime,
    ladder: Ladder,
    excluded: Mapping[str, Sequence[Span]],
) -> dict[Key, Series]:
    """Rows summed per series, maintenance left out: a row whose whole span is excluded is
    dropped, a part of one is counted from raw rows and subtracted."""
    dropped: set[tuple[str, datetime]] = set()
    partial: list[tuple[str, Span]] = []
    for provider, spans in excluded.items():
        for span in spans:
            for lo, hi in _hour_pieces(span, start, end):
                hour = floor_to(lo, HOUR)
                # The part of this hour the rows cover.
                if (lo, hi) == (max(hour, start), min(hour + HOUR, end)):
                    dropped.add((provider, hour))
                else:
                    partial.append((provider, (lo, hi)))
    out: dict[Key, Series] = {}
    for provider, endpoint, hour, figures in rows:
        if (provider, hour) not in dropped:
            out.setdefault((provider, endpoint), Series()).absorb(figures)
    for provider, piece in partial:
        for p, endpoint, _hour, minus in await _raw(session, kind, piece, ladder, [provider]):
            if (p, endpoint) in out:
                out[(p, endpoint)] = _minus(out[(p, endpoint)], minus, ladder)
    return out


def _minus(total: Series, part: Series, ladder: Ladder) -> Series:
    hist = ladder.merge(total.hists)
    taken = ladder.merge(part.hists)
    return Series(
        count=max(0, total.count - part.count),
        errors=max(0, total.errors - part.errors),
        latency_ms_sum=max(0.0, total.latency_ms_sum - part.latency_ms_sum),
        hists=[[max(0, a - b) for a, b in zip(hist, taken, strict=True)]],
    )


async def event_counts(
    session: AsyncSession,
    *,
    starts: Sequence[datetime],
    end: datetime,
    now: datetime,
    ladder: Ladder,
    providers: Sequence[str] | None = None,
    excluded: Mapping[str, Sequence[Span]] | None = None,
    histograms: bool = True,
) -> dict[datetime, dict[Key, dict[str, Any]]]:
    """SLO events of the windows [start, end), one per start, per (provider, endpoint):
    `good`, `bad`, `throttled` and `hist` (the latency histogram of good and bad events, on
    `ladder`; empty without `histograms`, when neither the histograms are read nor the
    raw rows grouped by latency bucket: what burn rates need, every minute, for every
    provider). `excluded` maps a provider to the spans (maintenance) left out."""
    excluded = excluded or {}
    common = {
        "starts": starts,
        "end": end,
        "now": now,
        "ladder": ladder,
        "providers": providers,
    }
    sums = {}
    for kind in ("check", "throttle"):
        if histograms:
            windows = await _read_windows(session, kind=kind, **common)
            sums[kind] = await _window_sums(
                session, kind=kind, windows=windows, end=end, ladder=ladder, excluded=excluded
            )
        else:
            sums[kind] = await _counts_only(session, kind=kind, excluded=excluded, **common)
    out: dict[datetime, dict[Key, dict[str, Any]]] = {}
    # Each window's sums are let go once its figures are made: at 10,000 providers the
    # windows' sums and figures all alive together made the burn-rate judging's peak.
    for start in dict.fromkeys(starts):
        checks, throttles = sums["check"].pop(start), sums["throttle"].pop(start)
        window: dict[Key, dict[str, Any]] = {}
        for key in sorted({*checks, *throttles}):
            check = checks.get(key) or Series()
            window[key] = {
                "good": check.count - check.errors,
                "bad": check.errors,
                "throttled": (throttles.get(key) or Series()).count,
                "hist": ladder.merge(check.hists) if histograms else [],
            }
        out[start] = window
    return out


async def _counts_only(
    session: AsyncSession,
    *,
    kind: Kind,
    starts: Sequence[datetime],
    end: datetime,
    now: datetime,
    ladder: Ladder,
    providers: Sequence[str] | None,
    excluded: Mapping[str, Sequence[Span]],
) -> dict[datetime, dict[Key, Series]]:
    """Counts summed in the database (`slo_counts`); the providers with maintenance in the
    span, which needs their hours one by one, go the general way, each on its own."""
    sums = await window_counts(
        session, kind=kind, starts=starts, end=end, now=now, ladder=ladder, providers=providers
    )
    earliest = min(starts)
    for provider, spans in excluded.items():
        if not any(a < end and b > earliest for a, b in spans):
            continue
        if providers is not None and provider not in providers:
            continue
        windows = await _read_windows(
            session,
            kind=kind,
            starts=starts,
            end=end,
            now=now,
            ladder=ladder,
            providers=[provider],
            histograms=False,
        )
        own = await _window_sums(
            session,
            kind=kind,
            windows=windows,
            end=end,
            ladder=ladder,
            excluded={provider: spans},
        )
        for start, per_key in sums.items():
            kept = {k: v for k, v in per_key.items() if k[0] != provider}
            kept.update(own[start])
            sums[start] = kept
    return sums


async def status_changes_around(
    session: AsyncSession,
    *,
    start: datetime,
    end: datetime,
    providers: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Status changes in [start, end) and, per provider, the last one before `start` (the
    status in force when the window opened), oldest first."""
    columns = (_SC.id, _SC.provider, _SC.old_status, _SC.new_status, _SC.reason, _SC.changed_at)
    scope = [] if providers is None else [_SC.provider.in_(list(providers))]
    inside = select(*columns).where(*scope, _SC.changed_at >= start, _SC.changed_at < end)
    rows = [row_dict(row) for row in await session.execute(inside)]
    # The newest change before the window, per provider (index on provider, changed_at).
    names = list(providers) if providers is not None else None
    if names is None:
        names = [p for (p,) in await session.execute(select(_SC.provider).distinct())]
    for name in names:
        before = await session.execute(
            select(*columns)
            .where(_SC.provider == name, _SC.changed_at < start)
            .order_by(_SC.changed_at.desc(), _SC.id.desc())
            .limit(1)
        )
        rows.extend(row_dict(row) for row in before)
    rows.sort(key=lambda r: (r["changed_at"], r["id"]))
    return rows


async def alerts_in(
    session: AsyncSession,
    *,
    start: datetime,
    end: datetime,
    providers: Sequence[str] | None = None,
    rules: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Alerts of providers that fired in [start, end), or fired before and were still open
    at `start`: id, rule, provider, severity, labels, fired_at, resolved_at; oldest first."""
    still_open = or_(_AL.resolved_at.is_(None), _AL.resolved_at >= start)
    overlaps = and_(_AL.fired_at < end, or_(_AL.fired_at >= start, still_open))
    conditions = [overlaps, _AL.provider.is_not(None)]
    if providers is not None:
        conditions.append(_AL.provider.in_(list(providers)))
    if rules is not None:
        conditions.append(_AL.rule.in_(list(rules)))
    query = (
        select(
            _AL.id, _AL.rule, _AL.provider, _AL.severity, _AL.labels, _AL.fired_at, _AL.resolved_at
        )
        .where(*conditions)
        .order_by(_AL.fired_at, _AL.id)
    )
    return [row_dict(row) for row in await session.execute(query)]
