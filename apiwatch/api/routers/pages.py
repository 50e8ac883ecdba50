"""The dashboard's pages: one HTML shell (`apiwatch/web/pages/shell.html`) filled with each
page's title and script, and the status page's own file; their scripts and
styles under `/static` (`apiwatch/web/static`, the npm libraries in its git-ignored
`vendor/`, filled by `make install`).

The shells are public, like `/docs`: they hold no data. Their scripts call the REST API
with the key the user typed into the sign-in box (kept in `sessionStorage`), so what a page
shows is what that key may read.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from string import Template

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

WEB = Path(__file__).resolve().parent.parent.parent / "web"
PAGES = WEB / "pages"
STATIC = WEB / "static"

# Paths the inbound middleware lets through without a key (the shells, the status page,
# its JSON and feed, the badges); `/static/` and `/` are public already.
PUBLIC_PAGES = frozenset(
    {"/alerts", "/schedules", "/slo", "/usage", "/status", "/status.json", "/status/feed.atom"}
)
PUBLIC_PAGE_PREFIXES = ("/providers/", "/badge/")

router = APIRouter(include_in_schema=False)
NO_CACHE = {"Cache-Control": "no-cache"}


def is_public_page(path: str) -> bool:
    return path in PUBLIC_PAGES or path.startswith(PUBLIC_PAGE_PREFIXES)


CHARTS = (
    '<link rel="stylesheet" href="/static/vendor/uPlot.min.css">\n'
    '<script src="/static/vendor/uPlot.iife.min.js" defer></script>\n'
)


def page(name: str) -> FileResponse:
    """A page with a file of its own (the public status page)."""
    return FileResponse(PAGES / f"{name}.html", media_type="text/html", headers=NO_CACHE)


@cache
def shell(title: str, script: str, charts: bool = False) -> str:
    template = Template((PAGES / "shell.html").read_text(encoding="utf-8"))
    return template.substitute(title=title, script=script, charts=CHARTS if charts else "")


def dashboard_page(title: str, script: str, *, charts: bool = False) -> HTMLResponse:
    return HTMLResponse(shell(title, script, charts), headers=NO_CACHE)


@router.get("/")
async def overview_page() -> HTMLResponse:
    return dashboard_page("Overview", "overview")


@router.get("/providers/{provider_id}")
async def provider_page(provider_id: str) -> HTMLResponse:
    # The script reads the id from the path and asks the API.
    return dashboard_page("Provider", "provider", charts=True)


@router.get("/alerts")
async def alerts_page() -> HTMLResponse:
    return dashboard_page("Alerts", "alerts")


@router.get("/schedules")
async def schedules_page() -> HTMLResponse:
    return dashboard_page("Schedules and data", "schedules", charts=True)


@router.get("/slo")
async def slo_page() -> HTMLResponse:
    return dashboard_page("Vendor SLOs", "slo")


@router.get("/usage")
async def usage_page() -> HTMLResponse:
    return dashboard_page("Inbound API", "usage", charts=True)


def mount_static(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static")
