"""The API's reference pages, /docs (Swagger UI) and /redoc, served entirely by apiwatch.

FastAPI's default pages load their JavaScript from a CDN and are blank without internet.
Here the same pages point at copies that `make install` takes from npm (package.json) into
`docs_assets/` (git-ignored), served under /static/docs/. Without them (npm missing) the
pages answer 503 saying how to get them, rather than a blank page.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

ASSETS_DIR = Path(__file__).resolve().parent / "docs_assets"
ASSETS_URL = "/static/docs"
SWAGGER_JS = "swagger-ui-bundle.js"
SWAGGER_CSS = "swagger-ui.css"
FAVICON = "favicon-32x32.png"
REDOC_JS = "redoc.standalone.js"

_MISSING = (
    "<!doctype html><title>apiwatch: docs assets missing</title>"
    "<h1>The API reference pages are not installed</h1>"
    "<p>Swagger UI and ReDoc are copied from npm by <code>make install</code>, which needs "
    "Node.js and npm. Install them and run <code>make install</code> again. Meanwhile the "
    "machine-readable description is at <a href='{openapi}'>{openapi}</a>.</p>"
)


def _missing(openapi_url: str, *files: str) -> Response | None:
    if all((ASSETS_DIR / name).is_file() for name in files):
        return None
    return HTMLResponse(_MISSING.format(openapi=openapi_url), status_code=503)


def add_docs_pages(app: FastAPI) -> None:
    """Mount the local assets and add /docs and /redoc (the app must be built with
    `docs_url=None, redoc_url=None`)."""
    openapi_url = app.openapi_url or "/openapi.json"
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR, check_dir=False), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> Response:
        return _missing(openapi_url, SWAGGER_JS, SWAGGER_CSS) or get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} · API reference",
            swagger_js_url=f"{ASSETS_URL}/{SWAGGER_JS}",
            swagger_css_url=f"{ASSETS_URL}/{SWAGGER_CSS}",
            swagger_favicon_url=f"{ASSETS_URL}/{FAVICON}",
            # The validator badge would send the document to an outside service.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> Response:
        return _missing(openapi_url, REDOC_JS) or get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} · API reference",
            redoc_js_url=f"{ASSETS_URL}/{REDOC_JS}",
            redoc_favicon_url=f"{ASSETS_URL}/{FAVICON}",
            with_google_fonts=False,
        )
