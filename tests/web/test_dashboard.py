"""The dashboard and the status page in real headless Chromium (Debian's, driven by
Playwright) against a running apiwatch (`apiwatch serve`) and its simulator.

Every page loads with no console error and no failed request; the overview shows every
provider and follows the live feed (a fault injected into the simulator turns a card
offline without a reload); acknowledging an alert and creating a silence from the pages
change what the API returns; admin actions appear only for admin keys; the status page
shows 90 daily bars per public provider and nothing secret; axe-core finds no serious or
critical violation. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apiwatch.catalogue.loader import load_catalogue
from tests.web.support import (
    ADMIN_KEY,
    KEYED,
    SECRET,
    Apiwatch,
    axe_violations,
    on_a_phone,
    open_live_page,
    open_page,
    require_browser,
    screenshot,
    sideways_scroll,
    signed_in,
    start_apiwatch,
)

# Whole-file wall clock for the test processes' ordering (tests/conftest.py).
pytestmark = pytest.mark.slow(65)

CATALOGUE = load_catalogue()
PAGES = {
    "overview": "/",
    "provider": "/providers/binance",
    "alerts": "/alerts",
    "schedules": "/schedules",
    "usage": "/usage",
    "status": "/status",
}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Apiwatch]:
    require_browser()
    workdir = tmp_path_factory.mktemp("web")
    for running in start_apiwatch(workdir):
        running.trigger()  # every enabled provider online, and some history
        running.trigger(collect=True)
        yield running


@pytest.fixture(scope="module")
def read_key(app: Apiwatch) -> str:
    with app.client() as client:
        response = client.post("/api/keys", json={"name": "web reader", "scope": "read"})
    assert response.status_code == 201, response.text
    return response.json()["key"]


@pytest.mark.parametrize("name", list(PAGES))
def test_every_page_loads_cleanly_and_passes_axe(app: Apiwatch, admin: Any, name: str) -> None:
    opened = open_page(admin, app.url + PAGES[name])
    opened.page.wait_for_timeout(300)  # charts and live connection settle
    screenshot(opened.page, f"{name}-1280")
    opened.clean()
    assert axe_violations(opened.page) == []
    # The key travels in headers and the WebSocket subprotocol, never in a URL.
    assert not [url for url in opened.urls if ADMIN_KEY in url], opened.urls


def test_the_overview_shows_every_provider_grouped_with_counts(app: Apiwatch, admin: Any) -> None:
    opened = open_page(admin, app.url + "/")
    page = opened.page
    ids = page.eval_on_selector_all(".card", "els => els.map(e => e.dataset.id)")
    assert sorted(ids) == sorted(CATALOGUE.providers)
    groups = page.eval_on_selector_all(".group h2", "els => els.map(e => e.textContent)")
    assert any(g.startswith("Market data") for g in groups)
    online = page.locator('.card[data-status="online"]').count()
    assert online == len(CATALOGUE.enabled())
    # Status is a word as well as a colour.
    assert page.locator('.card[data-id="binance"] .status').inner_text() == "online"
    # Filtering by status leaves only the matching cards visible.
    page.select_option("#status", "unknown")
    visible = page.eval_on_selector_all(
        ".card:not([hidden])", "els => els.map(e => e.dataset.status)"
    )
    assert visible and set(visible) == {"unknown"}
    page.fill("#search", "no-such-provider")
    assert page.locator(".card:not([hidden])").count() == 0
    # Durations keep their number and unit together (a no-break space), so a narrow card
    # never wraps "oldest 32" away from its "s".
    durations = page.evaluate(
        "async () => { const {seconds} = await import('/static/js/common.js');"
        " return [32, 600, 7200, 864000].map(seconds); }"
    )
    assert durations == ["32\u00a0s", "10\u00a0min", "2.0\u00a0h", "10\u00a0d"]
    opened.clean()


def test_a_fault_turns_the_card_offline_and_back_without_a_reload(
    app: Apiwatch, admin: Any
) -> None:
    opened = open_live_page(admin, app.url + "/")
    page = opened.page
    card = '.card[data-id="coingecko"]'
    assert page.get_attribute(card, "data-status") == "online"
    app.scenario("coingecko", "down", status=503)
    try:
        app.trigger(provider="coingecko")
        page.wait_for_selector(f'{card}[data-status="degraded"]', timeout=5_000)
        for _ in range(2):
            app.trigger(provider="coingecko")
        page.wait_for_selector(f'{card}[data-status="offline"]', timeout=5_000)
        assert "503" in page.inner_text(f"{card} .why") or "failure" in page.inner_text(
            f"{card} .why"
        )
        screenshot(page, "overview-offline")
    finally:
        app.healthy("coingecko")
    app.trigger(provider="coingecko")
    # Recovering, it is judged on its recent results: degraded first, then online.
    page.wait_for_selector(f'{card}:not([data-status="offline"])', timeout=5_000)
    assert page.evaluate("window.__marker") == "same page"  # no reload happened
    opened.clean()


def test_acknowledge_and_silence_from_the_pages_change_the_api(app: Apiwatch, admin: Any) -> None:
    app.scenario("binance", "down", status=503)
    try:
        for _ in range(3):
            app.trigger(provider="binance")
    finally:
        app.healthy("binance")
    with app.client() as client:
        firing = client.get("/api/alerts", params={"provider": "binance"}).json()["alerts"]
    assert firing, "three failed checks fire an alert"
    alert_id = firing[0]["id"]
    opened = open_page(admin, app.url + "/alerts")
    page = opened.page
    page.click(f'button[data-ack="{alert_id}"]')
    page.wait_for_selector(f'button[data-ack="{alert_id}"]', state="detached", timeout=5_000)
    with app.client() as client:
        alert = client.get(f"/api/alerts/{alert_id}/report").json()["alert"]
    assert alert["acknowledged_at"] is not None
    assert alert["acknowledged_by"] == "admin (APIWATCH_ADMIN_KEY)"

    page.fill('#silence-form input[name="provider"]', "binance")
    page.select_option('#silence-form select[name="duration"]', "3600")
    page.fill('#silence-form input[name="comment"]', "planned upgrade")
    page.click("#silence-form button[type=submit]")
    page.wait_for_selector("text=planned upgrade", timeout=5_000)
    with app.client() as client:
        silences = client.get("/api/silences").json()["silences"]
    made = [s for s in silences if s["comment"] == "planned upgrade"]
    assert made and made[0]["matchers"] == {"provider": "binance"} and made[0]["active"]
    page.click(f'button[data-report="{alert_id}"]')
    page.wait_for_selector("#report:not([hidden]) pre.report")
    screenshot(page, "alerts-acknowledged")
    # The public status page shows the maintenance notice (its data is cached for 10 s),
    # without the comment.
    public = open_page(admin, app.url + "/status")
    public.page.wait_for_timeout(10_500)
    public.page.reload()
    public.page.wait_for_selector("text=Maintenance of Binance", timeout=5_000)
    assert "planned upgrade" not in public.page.inner_text("main")
    opened.clean()
    public.clean()


def test_admin_actions_appear_only_for_an_admin_key(
    app: Apiwatch, browser: Any, read_key: str
) -> None:
    reader = signed_in(browser, read_key)
    try:
        alerts = open_page(reader, app.url + "/alerts")
        assert alerts.page.locator("#silence-form").count() == 0
        assert "needs an admin key" in alerts.page.inner_text("main")
        provider = open_page(reader, app.url + "/providers/etherscan")
        assert provider.page.locator("#check-now").count() == 0
        assert "shown to admin keys" in provider.page.inner_text("#keys")
        schedules = open_page(reader, app.url + "/schedules")
        assert schedules.page.locator("form[data-schedule]").count() == 0
        usage = open_page(reader, app.url + "/usage")
        assert "shown to admin keys" in usage.page.inner_text("#refused")
        for opened in (alerts, provider, schedules, usage):
            opened.clean()
    finally:
        reader.close()
    admin = signed_in(browser, ADMIN_KEY)
    try:
        provider = open_page(admin, app.url + "/providers/etherscan")
        assert provider.page.locator("#check-now").count() == 1
        keys = provider.page.inner_text("#keys")
        assert "ETHERSCAN_KEY" in keys
        assert KEYED["ETHERSCAN_KEY_1"] not in provider.page.content()  # masked
        provider.clean()
    finally:
        admin.close()


def test_the_inbound_page_shows_refused_requests_by_reason(
    app: Apiwatch, admin: Any, read_key: str
) -> None:
    with app.client(None) as anonymous:
        assert anonymous.get("/api/status").status_code == 401
    with app.client("aw_not-a-key") as stranger:
        assert [stranger.get("/api/status").status_code for _ in range(2)] == [401, 401]
    with app.client(read_key) as reader:
        assert reader.get("/api/keys").status_code == 403
    time.sleep(0.1)  # a refusal is counted just after its response is sent
    opened = open_page(admin, app.url + "/usage")
    page = opened.page
    with app.client() as client:
        answer = client.get("/api/usage/refusals", params={"range": "24h"}).json()
    expected = {item["reason"]: item["count"] for item in answer["by_reason"]}
    assert expected["invalid_key"] >= 2 and expected["missing_key"] >= 1
    assert expected["admin_required"] >= 1
    shown = page.eval_on_selector_all(
        "#refused-reasons tbody tr",
        "rows => rows.map(r => [r.dataset.reason, Number(r.cells[2].textContent)])",
    )
    assert dict(shown) == expected
    text = page.inner_text("#refused")
    assert "Unknown key" in text and "Read key on an admin route" in text
    assert "127.0.0.0/24" in text
    assert page.locator("#refused-chart .uplot").count() == 1
    screenshot(page, "usage-refusals")
    opened.clean()
    assert axe_violations(page) == []


def test_without_a_key_pages_ask_for_one_and_the_key_stays_in_the_tab(
    app: Apiwatch, browser: Any
) -> None:
    context = signed_in(browser, None)
    try:
        page = context.new_page()
        page.goto(app.url + "/")
        page.wait_for_selector("text=Sign in with an apiwatch API key")
        page.fill("#key-input", ADMIN_KEY)
        page.click("#signin button[type=submit]")
        page.wait_for_selector("body[data-ready]")
        assert ADMIN_KEY not in page.url
        assert page.evaluate("sessionStorage.getItem('apiwatch.key')") == ADMIN_KEY
        assert page.evaluate("localStorage.length") == 0
        assert page.evaluate("document.cookie") == ""
    finally:
        context.close()


def test_the_status_page_shows_90_bars_per_public_provider_and_no_secret(
    app: Apiwatch, browser: Any
) -> None:
    context = signed_in(browser, None)  # the public: no key at all
    try:
        opened = open_page(context, app.url + "/status")
        page = opened.page
        rows = page.locator(".sp-provider")
        assert rows.count() == len(CATALOGUE.enabled())
        for i in range(rows.count()):
            assert rows.nth(i).locator(".days i").count() == 90
        html = page.content()
        for secret in (ADMIN_KEY, SECRET, app.sim_url, "127.0.0.1"):
            assert secret not in html
        opened.clean()
        assert axe_violations(page) == []
    finally:
        context.close()


@pytest.mark.parametrize("name", ["overview", "status", "provider"])
def test_pages_fit_a_phone(app: Apiwatch, browser: Any, name: str) -> None:
    context = on_a_phone(browser)
    try:
        opened = open_page(context, app.url + PAGES[name])
        opened.page.wait_for_timeout(300)
        overflow = sideways_scroll(opened.page)
        assert overflow <= 1, f"{name} scrolls sideways by {overflow} px on a phone"
        screenshot(opened.page, f"{name}-phone")
        opened.clean()
    finally:
        context.close()


def test_dark_mode_and_keyboard_navigation(app: Apiwatch, browser: Any) -> None:
    context = signed_in(browser, ADMIN_KEY, color_scheme="dark")
    try:
        opened = open_page(context, app.url + "/")
        page = opened.page
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(13, 17, 23)"
        screenshot(page, "overview-dark")
        focused = []
        for _ in range(12):
            page.keyboard.press("Tab")
            focused.append(page.evaluate("document.activeElement.textContent.trim()"))
        assert focused[0] == "Skip to content"
        assert "Alerts" in focused and "Status page" in focused
        opened.clean()
        # A provider card's link is reachable and Enter opens its page.
        page.focus('.card[data-id="binance"] .head a')
        page.keyboard.press("Enter")
        page.wait_for_url("**/providers/binance")
    finally:
        context.close()


def test_the_overview_screenshot_for_the_readme(app: Apiwatch, admin: Any) -> None:
    """docs/overview.png is made here; it is committed once, and must stay under 1 MiB."""
    opened = open_page(admin, app.url + "/")
    opened.page.wait_for_timeout(300)
    path = screenshot(opened.page, "readme-overview")
    assert path.stat().st_size < 1024 * 1024
    committed = Path(__file__).resolve().parents[2] / "docs/overview.png"
    if committed.exists():
        assert committed.stat().st_size < 1024 * 1024
