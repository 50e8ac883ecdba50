"""SLO event counts without latency histograms, summed in the database: what burn rates read.

Burn-rate alerts are judged every minute for every provider over windows up to three days
long. The general reader (`slo.event_counts`) reads every settled hour's roll-up row with
its histogram and sums them in Python, which at thousands of providers is hundreds of
thousands of rows a minute. A rate needs good and bad counts only, so here each window is
three reads: its partial first hour from raw rows, its settled hours summed per series by
the database (one row per provider and endpoint, however long the window), and the hours
not yet settled, plus the partial last one, from raw rows. Maintenance is not taken out
here; `slo.event_counts` sums the providers that have some in the window its own way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from apiwatch.storage.repositories.raw_summary import (
    HOUR,
    Kind,
    Ladder,
    Series,
    aggregate,
    ceil_to,
    floor_to,
)
from apiwatch.storage.repositories.rollups import live_from, rolled_up_totals

Key = tuple[str, str]  # (provider, endpoint)
Span = tuple[datetime, datetime]


async def window_counts(
    session: AsyncSession,
    *,
    kind: Kind,
    starts: Sequence[datetime],
    end: datetime,
    now: datetime,
    ladder: Ladder,
    providers: Sequence[str] | None,
) -> dict[datetime, dict[Key, Series]]:
    """Per start, the window [start, end)'s counts per (provider, endpoint), no histograms."""
    whole_to = floor_to(end, HOUR)
    live = floor_to(now, HOUR) - HOUR
    if whole_to > live:
        live = await live_from(session, kind=kind, now=now)
    out: dict[datetime, dict[Key, Series]] = {}
    plans: list[tuple[datetime, Span | None, list[Span]]] = []
    for start in starts:
        first = ceil_to(start, HOUR)
        if first > whole_to:  # the whole window lies inside the last, partial hour
            plans.append((start, None, [(start, end)] if start < end else []))
        else:
            settled = (first, min(whole_to, live))
            spans = [(start, first), (max(first, min(whole_to, live)), whole_to), (whole_to, end)]
            plans.append((start, settled, [(lo, hi) for lo, hi in spans if lo < hi]))
    # The windows end together, so most share their last span (the hour under way): each
    # span is read once however many windows it is part of, and let go after the last.
    uses = Counter(span for _, _, spans in plans for span in spans)
    read: dict[Span, dict[tuple[str, str, datetime], Series]] = {}
    for start, settled, spans in plans:
        sums: dict[Key, Series] = {}
        if settled is not None and settled[0] < settled[1]:
            totals = await rolled_up_totals(
                session, kind=kind, start=settled[0], end=settled[1], subjects=providers
            )
            for key, figures in totals.items():
                sums.setdefault(key, Series()).absorb(figures)
        for span in spans:
            found = read.get(span)
            if found is None:
                found = read[span] = await aggregate(
                    session,
                    kind=kind,
                    start=span[0],
                    end=span[1],
                    ladder=ladder,
                    subjects=providers,
                    histograms=False,
                )
            uses[span] -= 1
            if not uses[span]:
                del read[span]
            for (provider, endpoint, _hour), figures in found.items():
                sums.setdefault((provider, endpoint), Series()).absorb(figures)
        out[start] = {key: figures for key, figures in sums.items() if figures.count}
    return out
