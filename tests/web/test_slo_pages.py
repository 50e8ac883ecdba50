"""The SLO page and the provider page's SLO panel in real headless Chromium against a
running apiwatch (`apiwatch serve`) and its simulator.

The page lists every provider with the figures `GET /api/slo` and `GET /api/scorecard`
return (objective from the settings, attainment, error budget left, burn rate, rank and
the poor-SLA flag with its reason), loads with no console error or failed request, passes
the same axe-core check as the other pages, and opens the monthly vendor report with the
key of the tab (sent as a header, never in a URL). The provider page's outcome chart over
7 d stacks every outcome the API counts. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.web.support import (
    ADMIN_KEY,
    Apiwatch,
    axe_violations,
    on_a_phone,
    open_page,
    require_browser,
    screenshot,
    sideways_scroll,
    start_apiwatch,
)

# Whole-file wall clock for the test processes' ordering (tests/conftest.py).
pytestmark = pytest.mark.slow(35)

FAILING = "coingecko"
TIMES = "\N{MULTIPLICATION SIGN}"  # how the page writes a burn rate: "1.25" and the sign


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Apiwatch]:
    # Every provider is held to 99.9 % (the setting, not the built-in 99.5 %), and one missed
    # window is enough to flag a poor SLA, so a provider failing now is flagged.
    require_browser()
    workdir = tmp_path_factory.mktemp("web-slo")
    settings = {"APIWATCH_SLO_TARGET": "99.9", "APIWATCH_SLO_POOR_AFTER": "1"}
    for running in start_apiwatch(workdir, **settings):
        running.trigger()  # every enabled provider answers once
        running.scenario(FAILING, "down", status=503)
        try:
            for _ in range(3):
                running.trigger(provider=FAILING)
        finally:
            running.healthy(FAILING)
        running.trigger(provider=FAILING)
        yield running


def api(app: Apiwatch, path: str) -> Any:
    with app.client() as client:
        response = client.get(path)
    assert response.status_code == 200, response.text
    return response.json()


def text(page: Any, selector: str) -> str:
    return " ".join(page.locator(selector).inner_text().split())


def test_the_slo_page_lists_every_provider_with_the_api_figures(app: Apiwatch, admin: Any) -> None:
    slo = api(app, "/api/slo")["providers"]
    card = {r["provider"]: r for r in api(app, "/api/scorecard?window=30d")["providers"]}
    opened = open_page(admin, app.url + "/slo")
    page = opened.page
    rows = page.locator("tr[data-provider]")
    assert rows.count() == len(slo) and len(slo) >= 10
    # Scorecard order: the ranked providers first, best first.
    shown = [rows.nth(i).get_attribute("data-provider") for i in range(rows.count())]
    assert shown == [r["provider"] for r in card.values()]
    judged = 0
    for p in slo:
        row = f'tr[data-provider="{p["provider"]}"]'
        assert text(page, f"{row} .objective").startswith("99.9 % over 30 d")
        assert text(page, f"{row} .rank") == str(card[p["provider"]]["rank"] or "—")
        budget = p["budget"]
        if budget["remaining"] is None:
            assert "no events" in text(page, f"{row} .attainment")
            continue
        judged += 1
        figures = p["windows"]["30d"]
        assert f"{figures['uptime_pct']:.3f} %" in text(page, f"{row} .attainment")
        assert f"{figures['good']} good / {figures['bad']} bad" in text(page, f"{row} .attainment")
        words = text(page, f"{row} .budget-cell")
        if budget["remaining"] > 0:
            assert f"{100 * budget['remaining']:.1f} % left" in words
        else:
            assert "exhausted" in words
        assert text(page, f"{row} .burn").startswith(f"{budget['burn_rate']:.2f}{TIMES}")
    assert judged >= 5

    # The provider that failed three checks of four missed 99.9 %: flagged, with the reason.
    failing = f'tr[data-provider="{FAILING}"]'
    assert card[FAILING]["poor_sla"] is True
    assert "missed" in text(page, f"{failing} .attainment")
    spent = next(p["budget"]["spent"] for p in slo if p["provider"] == FAILING)
    expected = f"exhausted: {round(spent)}{TIMES} the budget spent"  # 3 bad of 5 at 99.9 %
    assert text(page, f"{failing} .budget-cell") == expected
    assert "poor SLA" in text(page, f"{failing} .flag")
    assert card[FAILING]["reasons"][0] in text(page, f"{failing} .flag")
    healthy = next(p for p in card.values() if p["rank"] == 1)
    assert text(page, f'tr[data-provider="{healthy["provider"]}"] .flag') == "no"
    assert text(page, "#totals").startswith(f"{len(slo)} providers {judged} with events")
    opened.clean()


def test_the_slo_page_loads_cleanly_and_passes_axe(app: Apiwatch, admin: Any) -> None:
    opened = open_page(admin, app.url + "/slo")
    opened.page.wait_for_timeout(300)
    screenshot(opened.page, "slo-1280")
    opened.clean()
    assert axe_violations(opened.page) == []
    nav = opened.page.locator('nav a[aria-current="page"]')
    assert nav.inner_text() == "SLOs" and nav.get_attribute("href") == "/slo"
    assert not [url for url in opened.urls if ADMIN_KEY in url], opened.urls


def test_the_report_link_opens_the_month_with_the_tabs_key(app: Apiwatch, admin: Any) -> None:
    opened = open_page(admin, app.url + "/slo")
    page = opened.page
    month = page.locator("#report-month").input_value()
    assert page.locator("#report-link").get_attribute("href") == f"/reports/vendors?month={month}"
    with admin.expect_page() as report_tab:
        page.click("#report-link")
    report = report_tab.value
    report.wait_for_selector("h1")
    assert report.locator("h1").inner_text().startswith(f"Vendor report — {month}")
    assert ADMIN_KEY not in report.url
    opened.clean()


def test_the_provider_page_shows_the_same_slo_figures(app: Apiwatch, admin: Any) -> None:
    one = api(app, f"/api/slo/{FAILING}")
    row = next(
        r for r in api(app, "/api/scorecard?window=30d")["providers"] if r["provider"] == FAILING
    )
    opened = open_page(admin, app.url + f"/providers/{FAILING}")
    page = opened.page
    page.wait_for_selector("#slo .objective")
    assert text(page, "#slo .objective").startswith("99.9 % over 30 d")
    assert f"{one['windows']['30d']['uptime_pct']:.3f} %" in text(page, "#slo .attainment")
    assert "exhausted" in text(page, "#slo .budget-cell")
    assert text(page, "#slo .burn").startswith(f"{one['budget']['burn_rate']:.2f}{TIMES} over 30d")
    assert row["reasons"][0] in text(page, "#slo .flag")
    for window in ("1h", "24h", "7d", "30d", "90d"):
        cells = text(page, f'#slo tr[data-window="{window}"]')
        assert f"{one['windows'][window]['uptime_pct']:.3f} %" in cells
    screenshot(page, "provider-slo-1280")
    opened.clean()
    assert axe_violations(page) == []


@pytest.mark.parametrize("path", ["/slo", f"/providers/{FAILING}"])
def test_the_slo_figures_fit_a_phone(app: Apiwatch, browser: Any, path: str) -> None:
    context = on_a_phone(browser, color_scheme="dark")
    try:
        opened = open_page(context, app.url + path)
        opened.page.wait_for_timeout(300)
        overflow = sideways_scroll(opened.page)
        assert overflow <= 1, f"{path} scrolls sideways by {overflow} px on a phone"
        name = "slo" if path == "/slo" else "provider-slo"
        screenshot(opened.page, f"{name}-phone-dark")
        opened.clean()
    finally:
        context.close()


def test_the_provider_page_stacks_every_outcome_over_7_days(app: Apiwatch, admin: Any) -> None:
    # The same checks per outcome as over 24 h: the 7-day chart is not ok/error only.
    week = api(app, f"/api/providers/{FAILING}/outcomes?range=7d")
    assert week["counted"] == "checks"
    outcomes = {p["outcome"] for p in week["points"]}
    assert {"ok", "server_error"} <= outcomes
    opened = open_page(admin, app.url + f"/providers/{FAILING}")
    page = opened.page
    page.wait_for_selector("#outcomes .uplot")
    day_chart = page.query_selector("#outcomes .uplot")
    page.click('button[data-range="7d"]')
    # Drawn again for 7 d: the 24 h chart is replaced.
    page.wait_for_function("chart => !chart.isConnected", arg=day_chart)
    page.wait_for_selector("#outcomes .uplot")
    labels = page.locator("#outcomes .u-legend .u-series .u-label").all_inner_texts()
    assert set(labels) - {"", "Time"} == outcomes
    opened.clean()
