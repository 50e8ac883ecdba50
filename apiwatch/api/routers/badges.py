"""Shields-style SVG badges for READMEs and wikis, public like the status page and for the
same providers: `/badge/{provider}/status.svg`, `/badge/{provider}/uptime/{span}.svg`
(1h, 24h, 7d, 30d) and `/badge/{provider}/latency/{span}.svg` (24h, 7d; the median).

Figures come from the hourly roll-ups plus the live hour (whole hours touching the span),
computed at most once a minute per badge and sent with `Cache-Control: max-age=60`.
Colour thresholds are `UPTIME_COLOURS` and `LATENCY_COLOURS` (documented in
docs/dashboard.md).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal
from xml.sax.saxutils import escape

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

from apiwatch.analysis.rollups import LADDER
from apiwatch.api.contract import errors
from apiwatch.api.deps import RuntimeDep
from apiwatch.api.public import CACHE_S, TTLCache, public_providers
from apiwatch.domain import utcnow
from apiwatch.runtime import Runtime
from apiwatch.storage.repositories import charts as chart_repo
from apiwatch.storage.repositories.raw_summary import Series

router = APIRouter(prefix="/badge", tags=["badges"])
# An SVG image, or 404 for a provider that is not public.
SVG = {200: {"content": {"image/svg+xml": {}}, "description": "The badge"}} | errors(404)

_cache = TTLCache(CACHE_S)
HEADERS = {"Cache-Control": f"public, max-age={int(CACHE_S)}"}
SPANS = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7)}
SPANS["30d"] = timedelta(days=30)

GREEN, LIGHT_GREEN, YELLOW, ORANGE, RED, GREY = (
    "#2e7d32",
    "#558b2f",
    "#8a6d00",
    "#b34700",
    "#c62828",
    "#616161",
)
STATUS_COLOURS = {"online": GREEN, "degraded": YELLOW, "offline": RED, "unknown": GREY}
# (lowest value, colour), best first: uptime in percent, latency in ms (upper bounds).
UPTIME_COLOURS = ((99.9, GREEN), (99.0, LIGHT_GREEN), (95.0, YELLOW), (90.0, ORANGE), (0.0, RED))
LATENCY_COLOURS = ((300, GREEN), (800, LIGHT_GREEN), (1500, YELLOW), (3000, ORANGE))


def _width(text: str) -> int:
    # Verdana 11 px averages about 6.5 px per character; 10 px padding on both sides.
    return int(len(text) * 6.5) + 10


def badge_svg(label: str, value: str, colour: str) -> str:
    """A flat two-part badge; both texts are escaped."""
    lw, vw = _width(label), _width(value)
    total = lw + vw
    label_x, value_x = lw / 2, lw + vw / 2
    label, value = escape(label), escape(value)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" '
        f'aria-label="{label}: {value}"><title>{label}: {value}</title>'
        f'<rect width="{lw}" height="20" fill="#555"/>'
        f'<rect x="{lw}" width="{vw}" height="20" fill="{colour}"/>'
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" '
        'font-size="11">'
        f'<text x="{label_x}" y="14">{label}</text><text x="{value_x}" y="14">{value}</text>'
        "</g></svg>"
    )


def _svg(label: str, value: str, colour: str) -> Response:
    return Response(badge_svg(label, value, colour), media_type="image/svg+xml", headers=HEADERS)


def _public(runtime: Runtime, provider_id: str) -> None:
    if provider_id not in {spec.id for spec in public_providers(runtime)}:
        raise HTTPException(404, f"no public provider {provider_id!r}")


async def _series(runtime: Runtime, provider_id: str, span: str) -> Series:
    async def compute() -> Series:
        now = utcnow()
        async with runtime.sessions() as session:
            hours = await chart_repo.hourly_series(
                session,
                kind="probe",
                start=now - SPANS[span],
                end=now,
                now=now,
                ladder=LADDER,
                subjects=[provider_id],
            )
        total = Series()
        for _subject, _detail, _hour, figures in hours:
            total.absorb(figures)
        return total

    return await _cache.get((id(runtime), provider_id, span), compute)


def uptime_colour(pct: float) -> str:
    return next(colour for floor, colour in UPTIME_COLOURS if pct >= floor)


def latency_colour(ms: float) -> str:
    return next((colour for top, colour in LATENCY_COLOURS if ms < top), RED)


@router.get(
    "/{provider_id}/status.svg", summary="Badge: the provider's current status", responses=SVG
)
async def status_badge(provider_id: str, runtime: RuntimeDep) -> Response:
    _public(runtime, provider_id)
    status = runtime.tracker.state(provider_id).status.value
    return _svg(provider_id, status, STATUS_COLOURS[status])


@router.get(
    "/{provider_id}/uptime/{span}.svg",
    summary="Badge: uptime over 1h, 24h, 7d or 30d",
    responses=SVG,
)
async def uptime_badge(
    provider_id: str, span: Literal["1h", "24h", "7d", "30d"], runtime: RuntimeDep
) -> Response:
    _public(runtime, provider_id)
    series = await _series(runtime, provider_id, span)
    if not series.count:
        return _svg(f"uptime {span}", "no data", GREY)
    pct = 100.0 * (series.count - series.errors) / series.count
    text = f"{pct:.2f}%" if pct < 100 else "100%"
    return _svg(f"uptime {span}", text, uptime_colour(pct))


@router.get(
    "/{provider_id}/latency/{span}.svg",
    summary="Badge: median latency over 24h or 7d",
    responses=SVG,
)
async def latency_badge(
    provider_id: str, span: Literal["24h", "7d"], runtime: RuntimeDep
) -> Response:
    _public(runtime, provider_id)
    series = await _series(runtime, provider_id, span)
    p50 = series.summary(LADDER).get("p50_ms") if series.count else None
    if p50 is None:
        return _svg(f"latency {span}", "no data", GREY)
    return _svg(f"latency {span}", f"{p50:.0f} ms", latency_colour(p50))
