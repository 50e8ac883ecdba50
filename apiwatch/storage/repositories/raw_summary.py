"""The shared SQL that summarizes raw rows per series and hour: probe attempts
(`connection_attempts`) and inbound usage (`api_usage`) counted, errors counted and latencies
put in histogram buckets, all in the database.

The histogram is computed in the database (GROUP BY series, hour, latency bucket), so only
a few dozen rows per series and hour cross the wire however many raw rows there are. The
bucket scheme and percentiles come from the caller as a `Ladder` (storage may not import
`apiwatch.analysis`; `apiwatch.analysis.rollups.LADDER` is the one to pass). The counting
rules (what is a request, what is an error) are those documented in
`apiwatch.analysis.rollups`; a test holds the SQL here to them.

Probe series can also count their checks per outcome (`aggregate(..., outcomes=True)`),
for the outcome chart. rollups.py writes these summaries down per hour; charts.py and slo.py
read the live hour (and the edges of their windows) straight from here. The hour
arithmetic they share (`HOUR`, `floor_to`, `ceil_to`) and the dialect-specific truncation
live here too.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from sqlalchemy import String, case, cast, func, literal, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from apiwatch.domain import FAILURE_OUTCOMES, Outcome
from apiwatch.storage.models import ApiUsage, ConnectionAttempt

Kind = Literal["probe", "api", "check", "throttle"]
KINDS: tuple[Kind, ...] = ("probe", "api", "check", "throttle")

HOUR = timedelta(hours=1)

_ATT = ConnectionAttempt.__table__
_USE = ApiUsage.__table__

# Mirrors `apiwatch.analysis.rollups` (see the module docstring).
_PROBE_SUCCESS = (Outcome.OK.value, Outcome.SLOW.value)
_PROBE_NOT_SENT = Outcome.SKIPPED.value
_API_ERROR_STATUS = 400
_NO_KEY = "-"
# Mirrors `apiwatch.analysis.slo`: SLO events are final attempts, good or bad; a final
# rate-limited attempt is neither and has its own series (`throttle`).
_CHECK_BAD = tuple(sorted(o.value for o in FAILURE_OUTCOMES))
_CHECK_EVENTS = (*_PROBE_SUCCESS, *_CHECK_BAD)


class Ladder(Protocol):
    """The latency bucket scheme (`apiwatch.analysis.rollups.LatencyLadder`)."""

    @property
    def bounds_ms(self) -> tuple[float, ...]: ...

    @property
    def size(self) -> int: ...

    def merge(self, hists: Any) -> list[int]: ...

    def percentile(self, hist: Sequence[int], q: float) -> float | None: ...

    def summarize(
        self, *, count: int, errors: int, latency_ms_sum: float, hist: Sequence[int]
    ) -> dict[str, Any]: ...


@dataclass(slots=True)
class Series:
    """One series' counts over some span: what a roll-up row or a chart point is made of.
    Slotted: a job at 10,000 providers holds tens of thousands at once."""

    count: int = 0
    errors: int = 0
    latency_ms_sum: float = 0.0
    hists: list[Sequence[int]] = field(default_factory=list)
    # Checks per outcome (probe series only, when asked for); None when not known, as on
    # roll-ups made before they were kept.
    outcomes: dict[str, int] | None = None

    def absorb(self, other: Series) -> None:
        """Add another span's figures (merging happens once, in `summary`). Outcomes stay
        known only while every absorbed span knows them."""
        self.count += other.count
        self.errors += other.errors
        self.latency_ms_sum += other.latency_ms_sum
        self.hists.extend(other.hists)
        if self.outcomes is not None and other.outcomes is not None:
            for outcome, n in other.outcomes.items():
                self.outcomes[outcome] = self.outcomes.get(outcome, 0) + n
        else:
            self.outcomes = None

    def summary(self, ladder: Ladder) -> dict[str, Any]:
        hist = ladder.merge(self.hists)
        return ladder.summarize(
            count=self.count, errors=self.errors, latency_ms_sum=self.latency_ms_sum, hist=hist
        )


def floor_to(moment: datetime, step: timedelta) -> datetime:
    """The start of the `step`-long slot (aligned on the Unix epoch, UTC) holding `moment`."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return epoch + (moment - epoch) // step * step


def ceil_to(moment: datetime, step: timedelta) -> datetime:
    floor = floor_to(moment, step)
    return floor if floor == moment else floor + step


def truncated(column: Any, dialect: str, unit: Literal["hour", "day"]) -> ColumnElement[Any]:
    """`column` cut to the hour or day, as text on SQLite and a naive UTC timestamp on
    PostgreSQL; `parse_truncated` turns either into an aware datetime.

    SQLite stores these timestamps as naive UTC text (`YYYY-MM-DD HH:MM:SS.ffffff`), so a
    prefix is the truncation and costs no date parsing. Literals are inlined (not bound) so
    PostgreSQL sees the same expression in SELECT and GROUP BY.
    """
    if dialect == "sqlite":
        length = literal_column("13" if unit == "hour" else "10")
        return func.substr(column, literal_column("1"), length, type_=String())
    if dialect == "postgresql":
        # timezone('UTC', timestamptz) is the UTC wall time whatever the session's TimeZone.
        utc = func.timezone(literal_column("'UTC'"), column)
        return func.date_trunc(literal_column(f"'{unit}'"), utc)
    raise NotImplementedError(f"roll-ups do not support {dialect}")


def parse_truncated(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return _parse_text(str(value))


@functools.lru_cache(maxsize=256)
def _parse_text(text: str) -> datetime:
    # A roll-up reads one row per provider, hour and latency bucket, all naming the same
    # hour or two: strptime on each was most of a roll-up's CPU at 1,000 providers.
    layout = "%Y-%m-%d %H" if len(text) == 13 else "%Y-%m-%d"
    return datetime.strptime(text, layout).replace(tzinfo=UTC)


def _bucket(latency: Any, bounds: Sequence[float], lo: int, hi: int) -> ColumnElement[Any]:
    """Index of the bucket holding `latency` among buckets lo..hi, as a balanced CASE tree:
    about log2(44) ≈ 6 comparisons per row instead of up to 44 for a flat CASE."""
    if lo == hi:
        return literal_column(str(lo))
    mid = (lo + hi) // 2
    return case(
        (latency <= literal_column(repr(float(bounds[mid]))), _bucket(latency, bounds, lo, mid)),
        else_=_bucket(latency, bounds, mid + 1, hi),
    )


def bucket_expression(latency: Any, ladder: Ladder) -> ColumnElement[Any]:
    """The `ladder` bucket of `latency` (bucket i: bounds[i-1] < ms ≤ bounds[i]; the last one
    is the overflow), or -1 when the latency is unknown."""
    bounds = ladder.bounds_ms
    return case(
        (latency.is_(None), literal_column("-1")),
        else_=_bucket(latency, bounds, 0, len(bounds)),
    )


# Cached: building the bucket CASE tree costs milliseconds, and an SLO page runs a dozen
# small raw reads (the partial hours at the edges of its windows).
@functools.lru_cache(maxsize=32)
def _raw_source(kind: Kind, dialect: str, ladder: Ladder) -> tuple[Any, list[Any], Any, Any]:
    """For `kind`: the select of subject, detail, hour, bucket, error and latency per raw
    row; the conditions every query adds (skipped probes are not requests); the time column;
    and the subject and detail expressions, for filters."""
    if kind == "probe":
        t = _ATT.c
        subject, detail, at, latency = t.provider, literal("", String()), t.started_at, t.latency_ms
        error = case((t.outcome.in_(_PROBE_SUCCESS), 0), else_=1)
        conditions = [t.outcome != _PROBE_NOT_SENT]
    elif kind in ("check", "throttle"):
        t = _ATT.c
        subject, detail, at, latency = t.provider, t.endpoint, t.started_at, t.latency_ms
        if kind == "check":
            error = case((t.outcome.in_(_CHECK_BAD), 1), else_=0)
            conditions = [t.final.is_(True), t.outcome.in_(_CHECK_EVENTS)]
        else:
            error = literal_column("1")
            conditions = [t.final.is_(True), t.outcome == Outcome.RATE_LIMITED.value]
    elif kind == "api":
        u = _USE.c
        subject = func.coalesce(cast(u.key_id, String()), literal(_NO_KEY, String()))
        detail, at, latency = u.route, u.at, u.latency_ms
        error = case((u.status >= _API_ERROR_STATUS, 1), else_=0)
        conditions = []
    else:
        raise ValueError(f"unknown roll-up kind {kind!r}; expected one of {KINDS}")
    inner = select(
        subject.label("subject"),
        detail.label("detail"),
        truncated(at, dialect, "hour").label("hour"),
        bucket_expression(latency, ladder).label("bucket"),
        error.label("error"),
        latency.label("latency_ms"),
    )
    return inner, conditions, at, (subject, detail)


def _subject_filter(kind: Kind, subject: Any, subjects: Sequence[str]) -> ColumnElement[bool]:
    if kind != "api":
        return subject.in_(list(subjects))
    # On key_id itself rather than its text, so ix_api_usage_key_id_at serves the filter.
    key_ids = [int(s) for s in subjects if s != _NO_KEY and s.lstrip("-").isdigit()]
    matches = _USE.c.key_id.in_(key_ids)
    return or_(matches, _USE.c.key_id.is_(None)) if _NO_KEY in subjects else matches


async def aggregate(
    session: AsyncSession,
    *,
    kind: Kind,
    start: datetime,
    end: datetime,
    ladder: Ladder,
    subjects: Sequence[str] | None = None,
    detail: str | None = None,
    outcomes: bool = False,
    histograms: bool = True,
) -> dict[tuple[str, str, datetime], Series]:
    """Raw rows with time in [start, end), summarized per (subject, detail, hour).

    Each `Series` holds one histogram; without `histograms`, none (counts only, grouped
    without the latency bucket). `subjects` / `detail` narrow the series read. With
    `outcomes` (probe series only) each also counts its checks per outcome.
    """
    if outcomes and kind != "probe":
        raise ValueError(f"outcomes are counted for probe series only, not {kind!r}")
    dialect = session.get_bind().dialect.name
    inner, conditions, at, (subject_col, detail_col) = _raw_source(kind, dialect, ladder)
    conditions = [*conditions, at >= start, at < end]
    if subjects is not None:
        conditions.append(_subject_filter(kind, subject_col, subjects))
    if detail is not None:
        conditions.append(detail_col == detail)
    rows = inner.where(*conditions).subquery("raw")
    groups = [rows.c.subject, rows.c.detail, rows.c.hour]
    if histograms:
        groups.append(rows.c.bucket)
    query = select(
        *groups,
        func.count().label("n"),
        func.sum(rows.c.error).label("errors"),
        func.sum(rows.c.latency_ms).label("latency_ms_sum"),
    ).group_by(*groups)
    hists: dict[tuple[str, str, datetime], list[int]] = {}
    out: dict[tuple[str, str, datetime], Series] = {}
    for row in await session.execute(query):
        key = (str(row.subject), str(row.detail), parse_truncated(row.hour))
        series = out.get(key)
        if series is None:
            if histograms:
                hists[key] = [0] * ladder.size
                series = out[key] = Series(hists=[hists[key]])
            else:
                series = out[key] = Series()
        series.count += int(row.n)
        series.errors += int(row.errors or 0)
        series.latency_ms_sum += float(row.latency_ms_sum or 0.0)
        if histograms and int(row.bucket) >= 0:
            hists[key][int(row.bucket)] += int(row.n)
    if outcomes:
        for series in out.values():
            series.outcomes = {}
        checks = await _check_outcomes(session, dialect, start=start, end=end, subjects=subjects)
        for (subject, hour), counts in checks.items():
            # A check is a sent attempt, so its hour has a probe series, unless the attempt
            # was committed between the two queries: the next roll-up counts it.
            series = out.get((subject, "", hour))
            if series is not None:
                series.outcomes = counts
    return out


async def _check_outcomes(
    session: AsyncSession,
    dialect: str,
    *,
    start: datetime,
    end: datetime,
    subjects: Sequence[str] | None,
) -> dict[tuple[str, datetime], dict[str, int]]:
    """Checks (final attempts, skipped left out) per (provider, hour) and outcome: what the
    outcome chart counts, the same rule as `attempts.outcome_counts` on raw rows."""
    t = _ATT.c
    hour = truncated(t.started_at, dialect, "hour").label("hour")
    conditions = [
        t.started_at >= start,
        t.started_at < end,
        t.final.is_(True),
        t.outcome != _PROBE_NOT_SENT,
    ]
    if subjects is not None:
        conditions.append(t.provider.in_(list(subjects)))
    query = (
        select(t.provider, hour, t.outcome, func.count().label("n"))
        .where(*conditions)
        .group_by(t.provider, hour, t.outcome)
    )
    out: dict[tuple[str, datetime], dict[str, int]] = {}
    for provider, slot, outcome, n in await session.execute(query):
        out.setdefault((str(provider), parse_truncated(slot)), {})[str(outcome)] = int(n)
    return out
