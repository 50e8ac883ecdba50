"""Vendor SLOs for the faces: reads events, status changes, alerts, silences and
maintenance windows (`storage.repositories.slo`, `alerting.maintenance`), computes with
`analysis.slo`, `analysis.incidents` and `analysis.scorecard`, and returns the plain dicts
the API, the report and the burn-rate alerts use. The catalogue's objectives are turned into
`analysis.slo.Objective` here.
"""

from __future__ import annotations

import calendar
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from apiwatch.alerting.maintenance import MaintenanceWindow, window_from_row
from apiwatch.analysis import incidents as inc
from apiwatch.analysis import scorecard as sc
from apiwatch.analysis import slo as calc
from apiwatch.analysis.rollups import LADDER
from apiwatch.catalogue.loader import Catalogue
from apiwatch.catalogue.schema import DEFAULT_OBJECTIVE, ProviderSpec, ResolvedObjective
from apiwatch.storage.repositories import alerts as alert_repo
from apiwatch.storage.repositories import maintenance as maintenance_repo
from apiwatch.storage.repositories import slo as slo_repo

# Alerts the scorecard counts as data problems: stale data, and divergence, which is
# `data_divergent` for prices and `book_integrity` with check `cross_venue` for order books.
DATA_RULES = ("data_stale", "data_divergent", "book_integrity")


def is_divergence(alert: dict[str, Any]) -> bool:
    if alert["rule"] == "data_divergent":
        return True
    labels = alert.get("labels") or {}
    return alert["rule"] == "book_integrity" and labels.get("check") == "cross_venue"


def objective_of(
    spec: ProviderSpec,
    endpoint: str | None = None,
    *,
    defaults: ResolvedObjective = DEFAULT_OBJECTIVE,
) -> calc.Objective:
    """The catalogue's objective (percentages, days) as fractions and a timedelta; what the
    provider and endpoint leave out comes from `defaults` (the APIWATCH_SLO_* settings)."""
    resolved = spec.objective(endpoint, defaults=defaults)
    return calc.Objective(
        target=resolved.target / 100,
        window=timedelta(days=resolved.window_days),
        latency_p95_ms=resolved.latency_p95_ms,
        sla=None if resolved.sla is None else resolved.sla / 100,
        exclude_maintenance=resolved.exclude_maintenance,
    )


def objective_dict(objective: calc.Objective) -> dict[str, Any]:
    return {
        "target_pct": round(100 * objective.target, 4),
        "window_days": objective.window.days,
        "latency_p95_ms": objective.latency_p95_ms,
        "sla_pct": None if objective.sla is None else round(100 * objective.sla, 4),
        "exclude_maintenance": objective.exclude_maintenance,
    }


def month_span(month: str) -> tuple[datetime, datetime]:
    """`2026-11` → [2026-11-01, 2026-12-01) in UTC; ValueError for anything else."""
    try:
        year, number = (int(part) for part in month.split("-"))
        start = datetime(year, number, 1, tzinfo=UTC)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"month must look like 2026-11, got {month!r}") from exc
    days = calendar.monthrange(year, number)[1]
    return start, start + timedelta(days=days)


def previous_month(start: datetime) -> datetime:
    before = start - timedelta(days=1)
    return before.replace(day=1)


# What a provider without events in a window counts (read, never changed).
_NO_EVENTS = calc.Counts(hist=[])


def _counts(raw: dict[str, Any]) -> calc.Counts:
    return calc.Counts(raw["good"], raw["bad"], raw["throttled"], list(raw["hist"]))


@dataclass
class SloService:
    catalogue: Catalogue
    sessions: async_sessionmaker[AsyncSession]
    poor_after: int = 3
    # The objective of every provider that states none of its own (the settings).
    defaults: ResolvedObjective = DEFAULT_OBJECTIVE
    # The maintenance file's windows; the database's are read with each question.
    file_windows: Sequence[MaintenanceWindow] = ()

    def objective(self, spec: ProviderSpec, endpoint: str | None = None) -> calc.Objective:
        return objective_of(spec, endpoint, defaults=self.defaults)

    def specs(self, provider: str | None = None) -> list[ProviderSpec]:
        if provider is not None:
            spec = self.catalogue.get(provider)
            return [] if spec is None else [spec]
        return sorted(self.catalogue.enabled(), key=lambda s: s.id)

    # -- reading ------------------------------------------------------------------------------

    async def _maintenance(
        self,
        session: AsyncSession,
        specs: Sequence[ProviderSpec],
        *,
        start: datetime,
        end: datetime,
    ) -> dict[str, list[tuple[datetime, datetime]]]:
        """Per provider, the spans its figures leave out: silences and the occurrences of
        maintenance windows in [start, end), in the same form (`calc.maintenance_windows`
        decides which of them mean "this vendor is in maintenance")."""
        silences: list[dict[str, Any]] = list(await alert_repo.list_silences(session))
        stored = [window_from_row(row) for row in await maintenance_repo.list_windows(session)]
        for window in [*self.file_windows, *stored]:
            for occurrence in window.occurrences_between(start, end):
                silences.append(
                    {
                        "matchers": window.matchers,
                        "starts_at": occurrence.starts_at,
                        "ends_at": occurrence.ends_at,
                    }
                )
        out = {}
        for spec in specs:
            if not self.objective(spec).exclude_maintenance:
                continue
            windows = calc.maintenance_windows(
                silences, provider=spec.id, category=spec.category.value
            )
            if windows:
                out[spec.id] = [(w.start, w.end) for w in windows]
        return out

    async def _events(
        self,
        session: AsyncSession,
        specs: Sequence[ProviderSpec],
        *,
        starts: Sequence[datetime],
        end: datetime,
        now: datetime,
        histograms: bool = True,
        every_provider: bool = False,
    ) -> dict[datetime, dict[tuple[str, str], calc.Counts]]:
        """Events per window start and (provider, endpoint). `every_provider`: `specs` are
        all the enabled providers, so the rows are read without naming them (a list of
        ten thousand names checked on every row costs more than the few rows of providers
        not asked for, which callers look past)."""
        raw = await slo_repo.event_counts(
            session,
            starts=starts,
            end=end,
            now=now,
            ladder=LADDER,
            providers=None if every_provider else [s.id for s in specs],
            excluded=await self._maintenance(session, specs, start=min(starts), end=end),
            histograms=histograms,
        )
        # Converted a window at a time, each window's figures let go as it is done.
        return {
            start: {key: _counts(value) for key, value in raw.pop(start).items()}
            for start in list(raw)
        }

    @staticmethod
    def _per_provider(by_key: dict[tuple[str, str], calc.Counts]) -> dict[str, calc.Counts]:
        out: dict[str, calc.Counts] = {}
        for (provider, _endpoint), counts in by_key.items():
            total = out.get(provider)
            if total is None:
                # A copy of the first: counts read without a histogram stay without one
                # (burn rates at 10,000 providers made a 44-bucket list for each provider
                # and window, 20 MB every minute).
                hist = list(counts.hist)
                out[provider] = calc.Counts(counts.good, counts.bad, counts.throttled, hist)
            else:
                total.add(counts)
        return out

    async def _incidents(
        self,
        session: AsyncSession,
        specs: Sequence[ProviderSpec],
        *,
        start: datetime,
        end: datetime,
    ) -> dict[str, list[inc.Incident]]:
        ids = [s.id for s in specs]
        changes = await slo_repo.status_changes_around(session, start=start, end=end, providers=ids)
        by_provider: dict[str, list[dict[str, Any]]] = {}
        for change in changes:
            by_provider.setdefault(change["provider"], []).append(change)
        out = {}
        for pid in ids:
            found = inc.incidents_from_changes(pid, by_provider.get(pid, []))
            out[pid] = inc.overlapping(found, start, end)
        everything = [i for found in out.values() for i in found]
        if everything:
            earliest = min(i.start for i in everything)
            alerts = await slo_repo.alerts_in(session, start=earliest, end=end, providers=ids)
            inc.attach_alerts(everything, alerts)
        return out

    # -- the figures --------------------------------------------------------------------------

    async def overview(
        self, *, now: datetime, provider: str | None = None, endpoints: bool = False
    ) -> list[dict[str, Any]]:
        """Per provider: its objective, and per window (1h … 90d) events, uptime, latency
        percentiles, objective/SLA met, error budget and burn rate; `budget` is the one of
        the objective's own window. With `endpoints`, the same per endpoint."""
        specs = self.specs(provider)
        spans = dict(calc.WINDOWS)
        for spec in specs:
            window = self.objective(spec).window
            spans.setdefault(calc.describe_span(window), window)
        starts = {label: now - span for label, span in spans.items()}
        async with self.sessions() as session:
            events = await self._events(
                session, specs, starts=list(starts.values()), end=now, now=now
            )
        # Grouped once per window, not once per provider and window: at 1,000 providers the
        # latter merged a million histograms and held the event loop for seconds.
        grouped = {start: self._per_provider(events[start]) for start in set(starts.values())}
        out = []
        for spec in specs:
            objective = self.objective(spec)
            own = calc.describe_span(objective.window)
            per_window = {}
            for label, start in starts.items():
                counts = grouped[start].get(spec.id, calc.Counts())
                per_window[label] = self._figures(counts, objective, spans[label])
            item: dict[str, Any] = {
                "provider": spec.id,
                "name": spec.name,
                "category": spec.category.value,
                "objective": objective_dict(objective),
                "budget": per_window[own]["budget"],
                "windows": per_window,
            }
            if endpoints:
                item["endpoints"] = self._endpoints(spec, events[starts[own]])
            out.append(item)
        return out

    @staticmethod
    def _figures(counts: calc.Counts, objective: calc.Objective, span: timedelta) -> dict[str, Any]:
        over = dataclasses.replace(objective, window=span)
        return {**calc.summary(counts, objective), "budget": calc.budget(counts, over).as_dict()}

    def _endpoints(
        self, spec: ProviderSpec, by_key: dict[tuple[str, str], calc.Counts]
    ) -> dict[str, Any]:
        out = {}
        for name in spec.all_endpoints():
            objective = self.objective(spec, name)
            counts = by_key.get((spec.id, name), calc.Counts())
            out[name] = {
                "objective": objective_dict(objective),
                **self._figures(counts, objective, objective.window),
            }
        return out

    async def burn_rates(
        self,
        *,
        now: datetime,
        conditions: Sequence[calc.BurnCondition] = calc.DEFAULT_BURN_CONDITIONS,
        provider: str | None = None,
    ) -> dict[str, dict[timedelta, float | None]]:
        """Per provider, its burn rate over every window the conditions use, ending now."""
        specs = self.specs(provider)
        windows = calc.burn_windows(conditions)
        starts = [now - w for w in windows]
        async with self.sessions() as session:
            # Counts only: the latency histograms (44 buckets per provider, endpoint and
            # hour, three days of hours for the longest window) are not needed for a rate.
            events = await self._events(
                session,
                specs,
                starts=starts,
                end=now,
                now=now,
                histograms=False,
                every_provider=provider is None,
            )
        grouped = {w: self._per_provider(events.pop(now - w)) for w in windows}
        out: dict[str, dict[timedelta, float | None]] = {}
        for spec in specs:
            target = self.objective(spec).target
            out[spec.id] = {
                w: calc.burn_rate(grouped[w].get(spec.id) or _NO_EVENTS, target) for w in windows
            }
        return out

    async def incidents(
        self, *, start: datetime, end: datetime, now: datetime, provider: str | None = None
    ) -> dict[str, Any]:
        """Incidents overlapping [start, end), newest first, and MTTR/MTBF per provider."""
        specs = self.specs(provider)
        async with self.sessions() as session:
            found = await self._incidents(session, specs, start=start, end=end)
        listed = sorted(
            (i for items in found.values() for i in items), key=lambda i: i.start, reverse=True
        )
        return {
            "start": start,
            "end": end,
            "incidents": [i.as_dict(now) for i in listed],
            "providers": {
                pid: inc.reliability(items, start=start, end=end, now=now).as_dict()
                for pid, items in sorted(found.items())
            },
        }

    async def scorecard(
        self,
        *,
        windows: Sequence[tuple[datetime, datetime]],
        label: str,
        now: datetime,
        periods: str = "",
    ) -> list[dict[str, Any]]:
        """Every provider ranked over `windows[0]`; the others (older, same length, newest
        first) only say whether the objective was missed, for the poor-SLA flag."""
        specs = self.specs()
        (start, end), older = windows[0], windows[1:]
        async with self.sessions() as session:
            events = await self._events(session, specs, starts=[start], end=end, now=now)
            history = [
                (await self._events(session, specs, starts=[s], end=e, now=now))[s]
                for s, e in older
            ]
            found = await self._incidents(session, specs, start=start, end=end)
            data_alerts = await slo_repo.alerts_in(
                session, start=start, end=end, providers=[s.id for s in specs], rules=DATA_RULES
            )
        current = self._per_provider(events[start])
        past = [self._per_provider(h) for h in history]
        rows = []
        for spec in specs:
            objective = self.objective(spec)
            counts = current.get(spec.id, calc.Counts())
            span = min(end, now) - start
            figures = self._figures(counts, objective, max(span, timedelta(seconds=1)))
            lat = figures["p95_ms"]
            rel = inc.reliability(found.get(spec.id, []), start=start, end=end, now=now)
            missed = [
                sc.objective_missed(
                    calc.uptime(counts), objective.target, lat, objective.latency_p95_ms
                )
            ]
            for counts_then in past:
                then = counts_then.get(spec.id, calc.Counts())
                missed.append(
                    sc.objective_missed(
                        calc.uptime(then),
                        objective.target,
                        calc.latency(then)["p95_ms"],
                        objective.latency_p95_ms,
                    )
                )
            mine = [a for a in data_alerts if a["provider"] == spec.id]
            row = sc.ScoreRow(
                provider=spec.id,
                name=spec.name,
                window=label,
                events=counts.events,
                uptime=calc.uptime(counts),
                target=objective.target,
                sla=objective.sla,
                p95_ms=lat,
                latency_p95_ms=objective.latency_p95_ms,
                budget_spent=figures["budget"]["spent"],
                budget_remaining_s=figures["budget"]["remaining_s"],
                incidents=rel.incidents,
                mttr_s=rel.as_dict()["mttr_s"],
                mtbf_s=rel.as_dict()["mtbf_s"],
                throttled=counts.throttled,
                throttled_share=figures["throttled_share"],
                stale=sum(1 for a in mine if a["rule"] == "data_stale"),
                divergent=sum(1 for a in mine if is_divergence(a)),
                missed_history=missed,
                periods=periods,
            )
            sc.flag_poor_sla(row, poor_after=self.poor_after)
            rows.append(row)
        return [row.as_dict() for row in sc.rank(rows)]

    def rolling_windows(self, span: timedelta, now: datetime) -> list[tuple[datetime, datetime]]:
        count = max(1, self.poor_after)
        return [(now - (k + 1) * span, now - k * span) for k in range(count)]

    def month_windows(self, month: str) -> list[tuple[datetime, datetime]]:
        start, end = month_span(month)
        out = [(start, end)]
        while len(out) < max(1, self.poor_after):
            first = previous_month(out[-1][0])
            out.append((first, out[-1][0]))
        return out
