"""The monthly vendor report: its data (`report_data`, from the SLO service) and its page
(`render_report`), one self-contained HTML document (inline CSS, no scripts, fonts or
images from anywhere) laid out for A4 so that printing it to PDF gives a clean report.
`GET /reports/vendors` serves it; `apiwatch report` writes it to a file.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape
from typing import Any

from apiwatch.alerting.maintenance import MaintenanceWindow
from apiwatch.analysis.rollups import LADDER
from apiwatch.catalogue.loader import Catalogue
from apiwatch.catalogue.schema import DEFAULT_OBJECTIVE, ResolvedObjective
from apiwatch.domain import utcnow
from apiwatch.runtime.slo import SloService, month_span, previous_month
from apiwatch.storage.db import create_engine, create_sessionmaker
from apiwatch.storage.migrate import upgrade
from apiwatch.storage.repositories import rollups


class MonthNotBegun(ValueError):
    """A well-formed month whose report cannot exist yet (the API answers 404 for it)."""


async def report_data(slo: SloService, *, month: str | None, now: datetime) -> dict[str, Any]:
    """Scorecard and incidents of one calendar month (UTC); the last whole month by default.
    ValueError for a malformed month or one that has not begun."""
    if month is None:
        first = previous_month(now.replace(day=1, hour=0, minute=0, second=0, microsecond=0))
        month = first.strftime("%Y-%m")
    start, end = month_span(month)
    if start > now:
        raise MonthNotBegun(f"month {month} has not begun yet")
    windows = slo.month_windows(month)
    rows = await slo.scorecard(windows=windows, label=month, now=now, periods="months")
    found = await slo.incidents(start=start, end=end, now=now)
    return {
        "month": month,
        "start": start,
        "end": end,
        "generated_at": now,
        "complete": end <= now,
        "poor_after": slo.poor_after,
        "scorecard": rows,
        "incidents": found["incidents"],
    }


async def report_from_database(
    database_url: str,
    catalogue: Catalogue,
    *,
    month: str | None,
    poor_after: int,
    defaults: ResolvedObjective = DEFAULT_OBJECTIVE,
    file_windows: Sequence[MaintenanceWindow] = (),
) -> str:
    """The report page straight from a database, without a running server (`apiwatch
    report`). The SLO roll-ups are brought up to date first: a stopped server left the
    latest hours unrolled."""
    await upgrade(database_url)
    engine = create_engine(database_url)
    try:
        sessions = create_sessionmaker(engine)
        now = utcnow()
        async with sessions() as session:
            for kind in ("check", "throttle"):
                await rollups.backfill_if_new(session, kind=kind, now=now, ladder=LADDER)
                await rollups.roll_up_recent(session, kind=kind, now=now, ladder=LADDER)
        slo = SloService(
            catalogue, sessions, poor_after=poor_after, defaults=defaults, file_windows=file_windows
        )
        return render_report(await report_data(slo, month=month, now=now))
    finally:
        await engine.dispose()


def _pct(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f} %"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} ms"


def duration(seconds: float | None) -> str:
    """`3 h 05 min`, `12 min 30 s`, `45 s`; an em dash for None."""
    if seconds is None:
        return "—"
    total = round(seconds)
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours:02d} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def _when(moment: datetime | None) -> str:
    return "ongoing" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def _bar(spent_pct: float | None) -> str:
    if spent_pct is None:
        return ""
    width = max(0.0, min(100.0, spent_pct))
    over = " over" if spent_pct > 100 else ""
    return f'<div class="bar"><div class="fill{over}" style="width:{width:.1f}%"></div></div>'


STYLE = """
@page { size: A4; margin: 16mm 14mm; }
* { box-sizing: border-box; }
body { font: 10pt/1.4 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #1b1f24; margin: 0 auto; max-width: 190mm; padding: 8mm 0; }
h1 { font-size: 18pt; margin: 0 0 2mm; }
h2 { font-size: 13pt; margin: 8mm 0 2mm; border-bottom: 1px solid #c9d1d9; padding-bottom: 1mm; }
p.meta { color: #57606a; margin: 0 0 4mm; }
table { border-collapse: collapse; width: 100%; font-size: 8pt; }
th, td { text-align: left; padding: 1mm 1.1mm; border-bottom: 1px solid #d8dee4;
         vertical-align: top; }
small { color: #57606a; }
th { background: #f3f5f7; font-weight: 600; }
td.num, th.num { text-align: right; white-space: nowrap; }
tr { break-inside: avoid; }
thead { display: table-header-group; }
.poor { color: #a40e26; font-weight: 600; }
.ok { color: #1a7f37; }
.tag { display: inline-block; padding: 0 1.5mm; border-radius: 1mm; font-size: 7.5pt;
       background: #ffebe9; color: #a40e26; border: 1px solid #ffcecb; }
.bar { width: 15mm; height: 2.2mm; background: #eaeef2; border-radius: 1mm; overflow: hidden;
       margin-top: 0.8mm; }
.fill { height: 100%; background: #2f81f7; }
.fill.over { background: #cf222e; }
.summary { display: flex; gap: 4mm; margin: 3mm 0; }
.card { flex: 1; border: 1px solid #d8dee4; border-radius: 1.5mm; padding: 2mm 3mm; }
.card b { display: block; font-size: 14pt; }
dl { font-size: 8.5pt; } dt { font-weight: 600; margin-top: 1.5mm; } dd { margin: 0 0 0 4mm; }
* { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
@media print { body { padding: 0; } h2 { break-after: avoid; } }
"""


def _scorecard_table(rows: list[dict[str, Any]]) -> str:
    head = (
        "<tr><th class=num>#</th><th>Provider</th><th class=num>Uptime</th>"
        "<th class=num>Objective<br><small>SLA</small></th><th class=num>p95</th>"
        "<th>Budget spent</th><th class=num>Incidents</th><th class=num>MTTR</th>"
        "<th class=num>Rate-<br>limited</th><th class=num>Stale /<br>divergent</th>"
        "<th>Flag</th></tr>"
    )
    body = []
    for r in rows:
        # The reasons are listed above the table, where there is room for them.
        flag = (
            '<span class="tag">poor SLA</span>'
            if r["poor_sla"]
            else (
                '<span class="ok">—</span>' if r["rank"] is not None else "<small>no data</small>"
            )
        )
        spent = r["budget_spent_pct"]
        sla = "no SLA" if r["sla_pct"] is None else f"SLA {_pct(r['sla_pct'], 2)}"
        body.append(
            f"<tr><td class=num>{r['rank'] or '—'}</td>"
            f"<td>{escape(r['name'])}<br><small>{escape(r['provider'])}</small></td>"
            f"<td class=num>{_pct(r['uptime_pct'])}</td>"
            f"<td class=num>{_pct(r['target_pct'], 2)}<br><small>{sla}</small></td>"
            f"<td class=num>{_ms(r['p95_ms'])}</td>"
            f"<td>{_pct(spent, 1)}{_bar(spent)}</td><td class=num>{r['incidents']}</td>"
            f"<td class=num>{duration(r['mttr_s'])}</td>"
            f"<td class=num>{r['throttled']}<br><small>{_pct(r['throttled_pct'], 2)}</small></td>"
            f"<td class=num>{r['stale_alerts']} / {r['divergence_alerts']}</td>"
            f"<td>{flag}</td></tr>"
        )
    return f"<table><thead>{head}</thead><tbody>{''.join(body)}</tbody></table>"


def _incident_table(incidents: list[dict[str, Any]]) -> str:
    if not incidents:
        return "<p>No incidents this month.</p>"
    head = (
        "<tr><th>Provider</th><th>Start</th><th>End</th><th class=num>Duration</th>"
        "<th>Worst</th><th>Cause</th><th>Alerts</th></tr>"
    )
    body = []
    for i in sorted(incidents, key=lambda i: i["start"]):
        alerts = ", ".join(f"{a['rule']} ({a['severity']})" for a in i["alerts"]) or "—"
        body.append(
            f"<tr><td>{escape(i['provider'])}</td><td>{_when(i['start'])}</td>"
            f"<td>{_when(i['end'])}</td><td class=num>{duration(i['duration_s'])}</td>"
            f"<td>{escape(i['worst_status'])}</td><td>{escape(i['cause'] or i['reason'])}</td>"
            f"<td>{escape(alerts)}</td></tr>"
        )
    return f"<table><thead>{head}</thead><tbody>{''.join(body)}</tbody></table>"


DEFINITIONS = """
<dl>
<dt>Events</dt><dd>The final attempt of each check. Skipped checks (budget, breaker, no key)
are not events; rate-limited checks are not the vendor's failure and are counted apart;
checks during maintenance silences are left out.</dd>
<dt>Uptime</dt><dd>good &divide; (good + bad); good is ok or slow, bad every failure outcome.</dd>
<dt>Budget spent</dt><dd>bad &divide; ((1 &minus; objective) &times; events): 100 % means
the month's tolerance for failures is used up.</dd>
<dt>Incident</dt><dd>From a status change to degraded or offline until the next change to
online. MTTR: mean duration of the incidents that ended; MTBF: working time &divide; incidents
that began.</dd>
<dt>Poor SLA</dt><dd>Uptime below the vendor's published SLA this month, or the objective
missed in each of the last {n} months.</dd>
</dl>
"""


def render_report(data: dict[str, Any]) -> str:
    rows = data["scorecard"]
    judged = [r for r in rows if r["rank"] is not None]
    poor = [r for r in rows if r["poor_sla"]]
    downtime = sum(i["duration_s"] for i in data["incidents"])
    status = "" if data["complete"] else " (month in progress)"
    cards = (
        f'<div class="summary"><div class="card">Providers judged<b>{len(judged)}</b></div>'
        f'<div class="card">Flagged poor SLA<b class="{"poor" if poor else ""}">{len(poor)}</b>'
        f'</div><div class="card">Incidents<b>{len(data["incidents"])}</b></div>'
        f'<div class="card">Incident time<b>{duration(downtime)}</b></div></div>'
    )
    flagged = (
        "<ul>"
        + "".join(
            f"<li><b>{escape(r['name'])}</b>: {escape('; '.join(r['reasons']))}</li>" for r in poor
        )
        + "</ul>"
        if poor
        else "<p>No vendor missed its SLA or its objective.</p>"
    )
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        f"<title>Vendor report {escape(data['month'])}</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{STYLE}</style></head><body>"
        f"<h1>Vendor report — {escape(data['month'])}{status}</h1>"
        f"<p class=meta>{_when(data['start'])} to {_when(data['end'])} · generated "
        f"{_when(data['generated_at'])} by apiwatch</p>{cards}"
        f"<h2>To reconsider or renegotiate</h2>{flagged}"
        f"<h2>Scorecard</h2>{_scorecard_table(rows)}"
        f"<h2>Incidents</h2>{_incident_table(data['incidents'])}"
        f"<h2>How the figures are computed</h2>{DEFINITIONS.format(n=data['poor_after'])}"
        "</body></html>"
    )
