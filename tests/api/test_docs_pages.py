"""/docs and /redoc work offline: their pages load nothing from another host, and every
asset they reference is served by apiwatch itself. `GET /` is the dashboard."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from apiwatch.api.docs_pages import ASSETS_DIR, REDOC_JS, SWAGGER_CSS, SWAGGER_JS
from apiwatch.settings import Settings
from tests.api.test_api import serve

_URL = re.compile(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']|url:\s*["']([^"']+)["']""")


def _require_assets() -> None:
    if not all((ASSETS_DIR / name).is_file() for name in (SWAGGER_JS, SWAGGER_CSS, REDOC_JS)):
        reason = f"docs assets missing in {ASSETS_DIR}: run `make install` (needs npm)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path}/d.db")
    server, task, port = await serve(settings)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            yield http
    finally:
        server.should_exit = True
        await task


def _references(html: str) -> list[str]:
    return [a or b for a, b in _URL.findall(html)]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_page_references_no_other_host_and_its_assets_answer(
    client: httpx.AsyncClient, page: str
) -> None:
    _require_assets()
    response = await client.get(page)  # no key: the reference pages are public
    assert response.status_code == 200, response.text
    html = response.text
    assert not re.search(r"https?://", html), "the page names another host"
    refs = _references(html)
    assert "/openapi.json" in refs
    assets = [ref for ref in refs if ref != "/openapi.json"]
    assert len(assets) >= 2, refs  # the script (and style sheet or favicon)
    for ref in assets:
        assert not urlsplit(ref).netloc, ref
        asset = await client.get(ref)
        assert asset.status_code == 200, ref
        assert len(asset.content) > 100, ref
    assert (await client.get("/openapi.json")).status_code == 200


async def test_swagger_ui_does_not_call_the_online_validator(client: httpx.AsyncClient) -> None:
    _require_assets()
    html = (await client.get("/docs")).text
    assert '"validatorUrl": null' in html


async def test_root_is_the_dashboard(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")


async def test_without_the_assets_the_pages_say_how_to_get_them(
    client: httpx.AsyncClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As after `make install` on a machine without npm: the copied files are absent.
    monkeypatch.setattr("apiwatch.api.docs_pages.ASSETS_DIR", tmp_path / "none")
    for page in ("/docs", "/redoc"):
        response = await client.get(page)
        assert response.status_code == 503
        assert "make install" in response.text and "npm" in response.text
        assert "/openapi.json" in response.text
