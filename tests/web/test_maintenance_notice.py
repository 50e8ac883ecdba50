"""The public status page in real headless Chromium shows maintenance windows: one in force
now (from the maintenance file) and one planned through the API for later this week, each
with its title, message, times and the public provider's name, and nothing internal."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from apiwatch.domain import utcnow
from tests.web.support import (
    Apiwatch,
    open_page,
    require_browser,
    screenshot,
    signed_in,
    start_apiwatch,
)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Apiwatch]:
    require_browser()
    workdir = tmp_path_factory.mktemp("web-maintenance")
    start = (utcnow() - timedelta(hours=1)).isoformat()
    path = workdir / "maintenance.yaml"
    path.write_text(
        f"""windows:
  binance-upgrade:
    title: Binance matching engine upgrade
    message: Order books may be stale.
    matchers: {{provider: binance}}
    starts_at: "{start}"
    duration_s: 86400
"""
    )
    for running in start_apiwatch(workdir, APIWATCH_MAINTENANCE_FILE=str(path)):
        with running.client() as client:
            planned = client.post(
                "/api/maintenance",
                json={
                    "title": "Etherscan index rebuild",
                    "message": "Explorer data may lag.",
                    "matchers": {"provider": "etherscan"},
                    "starts_at": (utcnow() + timedelta(days=2)).isoformat(),
                    "duration_s": 1800,
                },
            )
        assert planned.status_code == 201, planned.text
        yield running


@pytest.fixture
def anonymous(browser: Any) -> Iterator[Any]:
    context = signed_in(browser, None, viewport={"width": 1280, "height": 900})
    yield context
    context.close()


def test_the_status_page_shows_active_and_upcoming_maintenance(
    app: Apiwatch, anonymous: Any
) -> None:
    opened = open_page(anonymous, app.url + "/status")
    page = opened.page
    active = page.locator('.notice.maintenance[data-state="active"]')
    upcoming = page.locator('.notice.maintenance[data-state="upcoming"]')
    assert active.count() == 1 and upcoming.count() == 1
    text = active.inner_text()
    assert "Binance matching engine upgrade" in text and "Order books may be stale." in text
    assert "(Binance)" in text and "in progress until" in text
    soon = upcoming.inner_text()
    assert "Etherscan index rebuild" in soon and "planned from" in soon
    with app.client(None) as client:
        notices = client.get("/status.json").json()["notices"]
    [planned] = [n for n in notices if n.get("state") == "upcoming"]
    assert upcoming.locator("time").first.get_attribute("datetime") == planned["starts_at"]
    html = page.inner_html("main")
    for internal in ("file:", "maintenance.yaml", "matchers", "admin"):
        assert internal not in html
    screenshot(page, "status-maintenance")
    opened.clean()
