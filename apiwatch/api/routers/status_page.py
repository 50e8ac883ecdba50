"""The public status page: `GET /status` (HTML), `GET /status.json` and the Atom feed of
incidents `GET /status/feed.atom`. No key needed; what they show is chosen and built in
`apiwatch.api.public` (cached for 10 s per process)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from xml.etree import ElementTree as ET

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from apiwatch.api.deps import RuntimeDep, json_response
from apiwatch.api.public import TTLCache, status_page_data
from apiwatch.api.routers.pages import page

router = APIRouter(tags=["status page"])

# Shorter than the badges' minute: a maintenance notice or an incident should show soon.
PAGE_CACHE_S = 10.0
_cache = TTLCache(PAGE_CACHE_S)
CACHE_HEADERS = {"Cache-Control": f"public, max-age={int(PAGE_CACHE_S)}"}
ATOM = "http://www.w3.org/2005/Atom"


async def cached_status(runtime: Any) -> dict[str, Any]:
    return await _cache.get((id(runtime), "status"), lambda: status_page_data(runtime))


@router.get("/status", include_in_schema=False)
async def status_page() -> FileResponse:
    return page("status")


@router.get("/status.json", summary="The public status page as JSON (no key needed)")
async def status_json(runtime: RuntimeDep) -> Response:
    return json_response(await cached_status(runtime), headers=CACHE_HEADERS)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours < 48 else f"{hours // 24} days"


def atom_feed(data: dict[str, Any], *, base_url: str) -> bytes:
    """The incidents as an Atom 1.0 feed, newest first; an entry's id stays the same while
    the incident goes on, its `updated` moves when it ends."""
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed")
    ET.SubElement(feed, f"{{{ATOM}}}title").text = f"{data['title']}: incidents"
    ET.SubElement(feed, f"{{{ATOM}}}id").text = f"{base_url}status"
    ET.SubElement(feed, f"{{{ATOM}}}link", href=f"{base_url}status")
    ET.SubElement(feed, f"{{{ATOM}}}link", rel="self", href=f"{base_url}status/feed.atom")
    ET.SubElement(feed, f"{{{ATOM}}}updated").text = _stamp(data["generated_at"])
    author = ET.SubElement(feed, f"{{{ATOM}}}author")
    ET.SubElement(author, f"{{{ATOM}}}name").text = "apiwatch"
    for incident in data["incidents"]:
        entry = ET.SubElement(feed, f"{{{ATOM}}}entry")
        state = (
            "ongoing"
            if incident["ongoing"]
            else f"resolved after {_duration(incident['duration_s'])}"
        )
        ET.SubElement(
            entry, f"{{{ATOM}}}title"
        ).text = f"{incident['provider_name']}: {incident['worst']} ({state})"
        ET.SubElement(
            entry, f"{{{ATOM}}}id"
        ).text = f"{base_url}status#{incident['provider']}-{int(incident['start'].timestamp())}"
        ET.SubElement(entry, f"{{{ATOM}}}link", href=f"{base_url}status")
        ET.SubElement(entry, f"{{{ATOM}}}updated").text = _stamp(
            incident["end"] or incident["start"]
        )
        ET.SubElement(entry, f"{{{ATOM}}}published").text = _stamp(incident["start"])
        ended = f"ended {_stamp(incident['end'])}" if incident["end"] else "still going on"
        ET.SubElement(entry, f"{{{ATOM}}}summary").text = (
            f"{incident['provider_name']} was {incident['worst']} from {_stamp(incident['start'])}"
            f", {ended}. Cause: {incident['cause'] or 'not known'}."
        )
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)


@router.get(
    "/status/feed.atom",
    summary="Atom feed of the status page's incidents",
    responses={200: {"content": {"application/atom+xml": {}}, "description": "Atom 1.0"}},
)
async def status_feed(request: Request, runtime: RuntimeDep) -> Response:
    data = await cached_status(runtime)
    return Response(
        content=atom_feed(data, base_url=str(request.base_url)),
        media_type="application/atom+xml",
        headers=CACHE_HEADERS,
    )
