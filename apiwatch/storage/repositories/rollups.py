"""Hourly roll-ups: raw `connection_attempts` / `api_usage` rows summarized per series and
hour into `hourly_rollups`, and the shared SQL that summarizes raw rows (charts reuse it for
the live hour).

The histogram is computed in the database (GROUP BY series, hour, latency bucket), so only
a few dozen rows per series and hour cross the wire however many raw rows there are. The
bucket scheme and percentiles come from the caller as a `Ladder` (storage may not import
`apiwatch.analysis`; `apiwatch.analysis.rollups.LADDER` is the one to pass). The counting
rules (what is a request, what is an error) are those documented in
`apiwatch.analysis.rollups`; a test holds the SQL here to them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from sqlalchemy import (
    String,
    Text,
    case,
    cast,
    func,
    literal,
    literal_column,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from apiwatch.domain import Outcome, utcnow
from apiwatch.storage.models import ApiUsage, ConnectionAttempt, HourlyRollup

Kind = Literal["probe", "api"]
KINDS: tuple[Kind, ...] = ("probe", "api")

HOUR = timedelta(hours=1)
# A probe is stored when it finishes, with its start time: one started at 10:59:50 with a
# long timeout lands after 11:00. A roll-up made this long after its hour ended is final.
SETTLE = timedelta(minutes=2)

_ATT = ConnectionAttempt.__table__
_USE = ApiUsage.__table__
_ROLL = HourlyRollup.__table__

# Mirrors `apiwatch.analysis.rollups` (see the module docstring).
_PROBE_SUCCESS = (Outcome.OK.value, Outcome.SLOW.value)
_PROBE_NOT_SENT = Outcome.SKIPPED.value
_API_ERROR_STATUS = 400
_NO_KEY = "-"


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


@dataclass
class Series:
    """One series' counts over some span: what a roll-up row or a chart point is made of."""

    count: int = 0
    errors: int = 0
    latency_ms_sum: float = 0.0
    hists: list[Sequence[int]] = field(default_factory=list)

    def absorb(self, other: Series) -> None:
        """Add another span's figures (merging happens once, in `summary`)."""
        self.count += other.count
        self.errors += other.errors
        self.latency_ms_sum += other.latency_ms_sum
        self.hists.extend(other.hists)

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
    text = str(value)
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


def _raw_source(kind: Kind, dialect: str, ladder: Ladder) -> tuple[Any, list[Any], Any, Any]:
    """For `kind`: the select of subject, detail, hour, bucket, error and latency per raw
    row; the conditions every query adds (skipped probes are not requests); the time column;
    and the subject and detail expressions, for filters."""
    if kind == "probe":
        t = _ATT.c
        subject, detail, at, latency = t.provider, literal("", String()), t.started_at, t.latency_ms
        error = case((t.outcome.in_(_PROBE_SUCCESS), 0), else_=1)
        conditions = [t.outcome != _PROBE_NOT_SENT]
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
    if kind == "probe":
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
) -> dict[tuple[str, str, datetime], Series]:
    """Raw rows with time in [start, end), summarized per (subject, detail, hour).

    Each `Series` holds one histogram. `subjects` / `detail` narrow the series read.
    """
    dialect = session.get_bind().dialect.name
    inner, conditions, at, (subject_col, detail_col) = _raw_source(kind, dialect, ladder)
    conditions = [*conditions, at >= start, at < end]
    if subjects is not None:
        conditions.append(_subject_filter(kind, subject_col, subjects))
    if detail is not None:
        conditions.append(detail_col == detail)
    rows = inner.where(*conditions).subquery("raw")
    query = select(
        rows.c.subject,
        rows.c.detail,
        rows.c.hour,
        rows.c.bucket,
        func.count().label("n"),
        func.sum(rows.c.error).label("errors"),
        func.sum(rows.c.latency_ms).label("latency_ms_sum"),
    ).group_by(rows.c.subject, rows.c.detail, rows.c.hour, rows.c.bucket)
    hists: dict[tuple[str, str, datetime], list[int]] = {}
    out: dict[tuple[str, str, datetime], Series] = {}
    for row in await session.execute(query):
        key = (str(row.subject), str(row.detail), parse_truncated(row.hour))
        series = out.get(key)
        if series is None:
            hists[key] = [0] * ladder.size
            series = out[key] = Series(hists=[hists[key]])
        series.count += int(row.n)
        series.errors += int(row.errors or 0)
        series.latency_ms_sum += float(row.latency_ms_sum or 0.0)
        if int(row.bucket) >= 0:
            hists[key][int(row.bucket)] += int(row.n)
    return out


async def _upsert_rollups(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    # `_rows.upsert` takes a one-column key; this table's is (kind, subject, detail, hour).
    dialect = session.get_bind().dialect.name
    statement = (pg_insert if dialect == "postgresql" else sqlite_insert)(_ROLL)
    updatable = ("count", "errors", "latency_ms_sum", "latency_hist", "p50_ms", "p95_ms")
    statement = statement.on_conflict_do_update(
        index_elements=["kind", "subject", "detail", "hour"],
        set_={name: statement.excluded[name] for name in (*updatable, "updated_at")},
    )
    await session.execute(statement, rows)


async def roll_up(
    session: AsyncSession,
    *,
    kind: Kind,
    start: datetime,
    end: datetime,
    ladder: Ladder,
    now: datetime | None = None,
) -> int:
    """(Re)compute the roll-ups of every whole hour touching [start, end) and commit.

    `start` rounds down and `end` up to the hour. Idempotent: a re-run over the same raw
    rows writes the same figures. Series without raw rows in an hour are left alone, so
    roll-ups outlive the raw rows that retention deletes. Returns the rows written.
    """
    first, last = floor_to(start, HOUR), ceil_to(end, HOUR)
    series = await aggregate(session, kind=kind, start=first, end=last, ladder=ladder)
    stamp = now or utcnow()
    rows = []
    for (subject, detail, hour), one in sorted(series.items()):
        hist = ladder.merge(one.hists)
        rows.append(
            {
                "kind": kind,
                "subject": subject,
                "detail": detail,
                "hour": hour,
                "count": one.count,
                "errors": one.errors,
                "latency_ms_sum": one.latency_ms_sum,
                "latency_hist": hist,
                "p50_ms": ladder.percentile(hist, 0.50),
                "p95_ms": ladder.percentile(hist, 0.95),
                "updated_at": stamp,
            }
        )
    if rows:
        await _upsert_rollups(session, rows)
    await session.commit()
    return len(rows)


async def roll_up_recent(
    session: AsyncSession, *, kind: Kind, now: datetime, ladder: Ladder
) -> int:
    """Roll up the current and the previous hour: the job run every few minutes. The
    previous hour is redone so rows stored after it ended (long probes, recorder batches)
    are counted, and so its roll-up becomes final (`SETTLE`)."""
    current = floor_to(now, HOUR)
    return await roll_up(
        session, kind=kind, start=current - HOUR, end=current + HOUR, ladder=ladder, now=now
    )


async def rolled_up(
    session: AsyncSession,
    *,
    kind: Kind,
    start: datetime,
    end: datetime,
    subjects: Sequence[str] | None = None,
    detail: str | None = None,
) -> list[tuple[str, str, datetime, Series]]:
    """Stored roll-ups with hour in [start, end), as (subject, detail, hour, figures)."""
    c = _ROLL.c
    conditions = [c.kind == kind, c.hour >= start, c.hour < end]
    if subjects is not None:
        conditions.append(c.subject.in_(list(subjects)))
    if detail is not None:
        conditions.append(c.detail == detail)
    result = await session.execute(
        select(
            c.subject,
            c.detail,
            c.hour,
            c.count,
            c.errors,
            c.latency_ms_sum,
            # As text on SQLite, decoded below in one call: a 30-day chart reads thousands.
            type_coerce(c.latency_hist, Text()),
        ).where(*conditions)
    )
    rows = result.all()
    if rows and isinstance(rows[0][6], str):
        hists = json.loads("[" + ",".join(row[6] for row in rows) + "]")
    else:  # asyncpg decodes json columns itself
        hists = [row[6] for row in rows]
    return [
        (subject, detail_, hour, Series(count, errors, latency_ms_sum, [hist]))
        for (subject, detail_, hour, count, errors, latency_ms_sum, _), hist in zip(
            rows, hists, strict=True
        )
    ]


async def live_from(session: AsyncSession, *, kind: Kind, now: datetime) -> datetime:
    """Where stored roll-ups stop being trustworthy: the current hour, or the previous one
    when its roll-up was made before that hour had settled (or not made at all)."""
    current = floor_to(now, HOUR)
    previous = current - HOUR
    c = _ROLL.c
    oldest = await session.scalar(
        select(func.min(c.updated_at)).where(c.kind == kind, c.hour == previous)
    )
    if oldest is not None and oldest >= current + SETTLE:
        return current
    return previous
