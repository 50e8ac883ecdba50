"""The schedules page's per-schedule compliance and the inbound API page's limits and live
feed, in real headless Chromium against a running apiwatch and its simulator.

The schedules page charts the compliance of the schedule chosen in its table, with the
week's figures as `GET /api/charts/compliance?provider=` gives them; the inbound API page
follows /ws/live (the header's indicator says "live") and shows the signed-in key's use of
its minute, hour and day windows as the limiter reports them in the X-RateLimit headers.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, insert

from apiwatch.domain import utcnow
from apiwatch.storage.models import ScheduleCompliance
from tests.web.support import (
    Apiwatch,
    axe_violations,
    open_page,
    require_browser,
    screenshot,
    start_apiwatch,
)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Apiwatch]:
    require_browser()
    workdir = tmp_path_factory.mktemp("web-schedules-usage")
    for running in start_apiwatch(workdir):
        # The scheduler is off here (runs on demand plan nothing), so a week of planned runs
        # goes into the server's database as the recorder writes them.
        with running.client() as client:
            schedules = client.get("/api/schedule").json()["schedules"]
        now = utcnow()
        rows = [
            {
                "provider": s["provider"],
                "category": s["category"],
                "planned_at": now - timedelta(hours=3 * i + n),
                "started_at": None if result == "skipped" else now,
                "lateness_ms": None,
                "result": result,
                "reason": "rate_limit_budget" if result == "skipped" else "",
            }
            for n, s in enumerate(schedules)
            for i, result in enumerate(["on_time"] * (n + 3) + ["late"] * 2 + ["skipped"])
        ]
        engine = create_engine(f"sqlite:///{workdir / 'web.db'}")
        with engine.begin() as connection:
            connection.execute(insert(ScheduleCompliance.__table__), rows)
        engine.dispose()
        yield running


def week_of(app: Apiwatch, provider: str) -> tuple[int, int]:
    """(planned, on time) of `provider`'s schedule over 7 days, from the API."""
    with app.client() as client:
        response = client.get(
            "/api/charts/compliance",
            params={"range": "7d", "bucket": "day", "provider": provider},
        )
    assert response.status_code == 200, response.text
    [series] = response.json()["series"]
    assert series["provider"] == provider
    points = series["points"]
    return sum(p["planned"] for p in points), sum(p["on_time"] for p in points)


def test_schedules_page_charts_the_chosen_schedule_as_the_api_counts_it(
    app: Apiwatch, admin: Any
) -> None:
    with app.client() as client:
        schedules = client.get("/api/schedule").json()["schedules"]
    first, other = schedules[0]["provider"], schedules[-1]["provider"]
    assert first != other
    opened = open_page(admin, app.url + "/schedules")
    page = opened.page
    figure = page.locator("#chosen-figure [data-planned]")
    # The first schedule is charted on arrival.
    assert page.locator("#chosen-title").inner_text() == f"Compliance of {first}, 7 days"
    planned, on_time = week_of(app, first)
    assert planned > 0
    assert figure.get_attribute("data-planned") == str(planned)
    assert figure.get_attribute("data-on-time") == str(on_time)
    assert f"{100 * on_time / planned:.2f} %" in figure.inner_text()
    assert page.locator("#chosen-chart canvas").count() == 1

    page.locator(f'[data-compliance="{other}"]').click()
    page.wait_for_function(
        "t => document.querySelector('#chosen-title').textContent.includes(t)", arg=other
    )
    planned, on_time = week_of(app, other)
    page.wait_for_function(
        "n => document.querySelector('#chosen-figure [data-planned]')?.dataset.planned === n",
        arg=str(planned),
    )
    assert figure.get_attribute("data-on-time") == str(on_time)
    assert page.locator(f'[data-compliance="{other}"]').get_attribute("aria-pressed") == "true"
    # The per-category chart is still there.
    assert page.locator("#compliance canvas").count() == 1
    screenshot(page, "schedules-per-schedule-compliance")
    opened.clean()
    assert axe_violations(page) == []


def test_usage_page_follows_the_live_feed_and_shows_each_window_of_the_key(
    app: Apiwatch, admin: Any
) -> None:
    opened = open_page(admin, app.url + "/usage")
    page = opened.page
    page.wait_for_selector('#live[data-state="live"]', timeout=10_000)
    assert page.locator("#live").inner_text() == "live"
    assert [url for url in opened.urls if url.startswith("ws://") and "/ws/live" in url]

    shown = {}
    for window in ("minute", "hour", "day"):
        row = page.locator(f'#own-windows tr[data-window="{window}"]')
        shown[window] = (
            int(row.locator("[data-limit]").inner_text()),
            int(row.locator("[data-used]").inner_text()),
        )
    # The limits the server was started with (tests/web/support.py), as the API applies them.
    assert {w: limit for w, (limit, _) in shown.items()} == {
        "minute": 100000,
        "hour": 1000000,
        "day": 10000000,
    }
    # The page's own calls counted: at least one request in every window, and no more in the
    # minute than in the hour, or in the hour than in the day.
    assert 1 <= shown["minute"][1] <= shown["hour"][1] <= shown["day"][1]
    with app.client() as client:
        response = client.get("/api/whoami")
    for window, (limit, used) in shown.items():
        name = window.capitalize()
        assert int(response.headers[f"X-RateLimit-{name}-Limit"]) == limit
        after = limit - int(response.headers[f"X-RateLimit-{name}-Remaining"])
        # This request (and any the page made since) come after what the page showed; a
        # window that turned over in between starts again from a few.
        assert used < after <= used + 10 or after <= 10, (window, used, after)
    # The admin table names every key's minute limit as well.
    assert "Minute limit" in page.locator("#limits thead").inner_text()
    screenshot(page, "usage-live-limits")
    opened.clean()
    assert axe_violations(page) == []
