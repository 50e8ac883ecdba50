"""Vendor SLOs: `GET /api/slo` (every provider's uptime, latency and error budget per window),
`GET /api/slo/{provider}` (the same per endpoint, with burn rates and incidents),
`GET /api/incidents`, `GET /api/scorecard` (JSON or `?format=csv`) and the printable monthly
vendor report `GET /reports/vendors?month=2026-11`.

The figures and how they are computed: `apiwatch.analysis.slo`, `.incidents`, `.scorecard`
and docs/slo.md.
"""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import HTMLResponse, Response

from apiwatch.analysis import slo as calc
from apiwatch.analysis.scorecard import CSV_COLUMNS
from apiwatch.api.contract import errors
from apiwatch.api.deps import RuntimeDep, known_provider
from apiwatch.api.routers.charts import SPAN_PATTERN, parse_span
from apiwatch.api.vendor_report import MonthNotBegun, render_report, report_data
from apiwatch.domain import utcnow

router = APIRouter(tags=["slo"])

WindowQuery = Annotated[
    str,
    Query(
        description="e.g. 24h, 7d, 30d; at most 90d", json_schema_extra={"pattern": SPAN_PATTERN}
    ),
]
# A month of the reports' range, stated in the schema so a month it allows is never refused.
MONTH_PATTERN = r"^(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])$"


@router.get("/api/slo", summary="Every provider: uptime, latency, error budget per window")
async def slo_overview(runtime: RuntimeDep) -> dict[str, Any]:
    now = utcnow()
    return {
        "at": now,
        "windows": list(calc.WINDOWS),
        "providers": await runtime.slo.overview(now=now),
    }


@router.get(
    "/api/slo/{provider}",
    summary="One provider: its figures per window and endpoint, burn rates, incidents",
    responses=errors(404),
)
async def slo_provider(provider: str, runtime: RuntimeDep) -> dict[str, Any]:
    spec = known_provider(runtime, provider)
    now = utcnow()
    [item] = await runtime.slo.overview(now=now, provider=spec.id, endpoints=True)
    conditions = (
        runtime.alerts.rules.burn_conditions()
        if runtime.alerts is not None
        else list(calc.DEFAULT_BURN_CONDITIONS)
    )
    rates = (await runtime.slo.burn_rates(now=now, conditions=conditions, provider=spec.id))[
        spec.id
    ]
    held = calc.judge_burn(rates, conditions)
    window = runtime.slo.objective(spec).window
    found = await runtime.slo.incidents(start=now - window, end=now, now=now, provider=spec.id)
    return {
        "at": now,
        **item,
        "burn_rates": {calc.describe_span(w): _rounded(r) for w, r in rates.items()},
        "burn_alert": None if held is None else {"condition": held.name, "severity": held.severity},
        "incidents": found["incidents"],
        "reliability": found["providers"][spec.id],
    }


@router.get(
    "/api/incidents",
    summary="Incidents from status changes, with MTTR and MTBF",
    responses=errors(404),
)
async def incidents(
    runtime: RuntimeDep,
    window: WindowQuery = "30d",
    provider: Annotated[str | None, Query(description="one provider only")] = None,
) -> dict[str, Any]:
    span = parse_span(window, "window")
    if provider is not None:
        known_provider(runtime, provider)
    now = utcnow()
    found = await runtime.slo.incidents(start=now - span, end=now, now=now, provider=provider)
    return {"window": window, **found}


@router.get(
    "/api/scorecard",
    summary="Every provider ranked against its objective and SLA (JSON or CSV)",
    response_model=None,
    responses={200: {"content": {"application/json": {}, "text/csv": {}}}},
)
async def scorecard(
    runtime: RuntimeDep,
    window: WindowQuery = "30d",
    format_: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
) -> dict[str, Any] | Response:
    span = parse_span(window, "window")
    now = utcnow()
    rows = await runtime.slo.scorecard(
        windows=runtime.slo.rolling_windows(span, now), label=window, now=now
    )
    if format_ == "csv":
        return Response(
            scorecard_csv(rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="scorecard-{window}.csv"'},
        )
    return {
        "window": window,
        "start": now - span,
        "end": now,
        "poor_after": runtime.slo.poor_after,
        "providers": rows,
    }


def scorecard_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                **{name: row.get(name) for name in CSV_COLUMNS},
                "reasons": "; ".join(row["reasons"]),
            }
        )
    return out.getvalue()


@router.get(
    "/reports/vendors",
    response_class=HTMLResponse,
    # Refusals are JSON like everywhere else, although the page itself is HTML (the
    # contract drops the HTML media type FastAPI would write onto them).
    responses=errors(**{"404": "No report yet: the month has not begun"}),
    summary="The monthly vendor report: a self-contained page that prints well to PDF",
)
async def vendor_report(
    runtime: RuntimeDep,
    month: Annotated[
        str | None,
        Query(
            description="YYYY-MM (UTC); default: last month",
            json_schema_extra={"pattern": MONTH_PATTERN},
        ),
    ] = None,
) -> HTMLResponse:
    now = utcnow()
    try:
        data = await report_data(runtime.slo, month=month, now=now)
    except MonthNotBegun as error:
        # The pattern allows it and JSON Schema cannot say "not in the future": no such
        # report (yet), not a malformed request.
        raise HTTPException(404, str(error)) from error
    except ValueError as error:
        raise HTTPException(422, str(error)) from error
    return HTMLResponse(render_report(data))


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
