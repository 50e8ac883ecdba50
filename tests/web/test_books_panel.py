"""The provider page's order-book panel and the overview card's book line in real headless
Chromium against a running apiwatch (`apiwatch serve`) and its simulator.

For an exchange the panel shows the figures `GET /api/data/books` returns (best bid and ask,
spread, depth ±1 %, age, update id) and every check's verdict as a word; a crossed book
injected into the simulator and collected while the page is open turns the `crossed` check
to `failing` with its reason, without a reload, and the overview card then says
`book: crossed`. A provider without books shows no panel. The pages load with no console
error or failed request and pass the same axe-core check as the other pages. Screenshots go
to test-artifacts/.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.web.support import (
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
pytestmark = pytest.mark.slow(22)

EXCHANGE = "bybit"
ITEM = "book:BTC-USDT"
WORDS = {"ok": "passing", "failed": "failing", "not_judged": "not judged"}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Apiwatch]:
    require_browser()
    for running in start_apiwatch(tmp_path_factory.mktemp("web-books")):
        running.trigger(provider=EXCHANGE)
        yield running


def collect(app: Apiwatch) -> dict[str, Any]:
    return app.trigger(provider=EXCHANGE, collect=True)


def book(app: Apiwatch) -> dict[str, Any]:
    with app.client() as client:
        response = client.get("/api/data/books", params={"provider": EXCHANGE})
    assert response.status_code == 200, response.text
    [row] = response.json()["books"]
    assert row["item"] == ITEM
    return row


def text(page: Any, selector: str) -> str:
    return " ".join(page.locator(selector).inner_text().split())


def verdicts(page: Any) -> dict[str, str]:
    """Check → the verdict's words, in the order the page lists them."""
    rows = page.locator(f'table.book-checks[data-item="{ITEM}"] tr[data-check]')
    return {
        rows.nth(i).get_attribute("data-check"): " ".join(
            rows.nth(i).locator(".verdict").inner_text().split()
        )
        for i in range(rows.count())
    }


def test_the_panel_shows_the_figures_and_every_verdict_the_api_returns(
    app: Apiwatch, admin: Any
) -> None:
    collect(app)
    row = book(app)
    assert row["checks"]["crossed"] == "ok"
    opened = open_page(admin, app.url + f"/providers/{EXCHANGE}")
    page = opened.page
    page.wait_for_selector("#books-panel:not([hidden]) table.books")
    figures = f'table.books tr[data-item="{ITEM}"]'
    # Exact decimals, as the API gives them: no float on the way to the page.
    assert text(page, f"{figures} .bid") == row["best_bid"]
    assert text(page, f"{figures} .ask") == row["best_ask"]
    assert text(page, f"{figures} .spread") == row["spread_bps"]
    assert text(page, f"{figures} .depth") == row["depth"]
    assert text(page, f"{figures} .update-id") == str(row["update_id"])
    assert text(page, f"{figures} .age").startswith(f"{row['age_s']:.3f} s")
    assert text(page, f"{figures} .overall") == "none failing"
    shown = verdicts(page)
    assert list(shown) == list(row["checks"])  # every check, in the API's order
    assert shown == {check: WORDS[v] for check, v in row["checks"].items()}
    assert shown["crossed"] == "passing"
    opened.clean()
    assert axe_violations(page) == []


def test_a_crossed_book_shows_failing_with_its_reason_without_a_reload(
    app: Apiwatch, admin: Any
) -> None:
    opened = open_page(admin, app.url + f"/providers/{EXCHANGE}")
    page = opened.page
    page.wait_for_selector("#books-panel:not([hidden]) table.books")
    before = page.locator('tr[data-check="crossed"] .verdict').inner_text()
    assert "passing" in before
    app.scenario(EXCHANGE, "crossed_book")
    try:
        collect(app)
    finally:
        app.healthy(EXCHANGE)
    row = book(app)
    assert row["checks"]["crossed"] == "failed"
    reason = row["failed"]["crossed"]
    assert reason.startswith("best bid ")
    crossed = f'table.book-checks[data-item="{ITEM}"] tr[data-check="crossed"]'
    # The live feed's new_log_entry of the collection redraws the panel.
    page.wait_for_function(
        "s => document.querySelector(s)?.textContent.includes('failing')",
        arg=f"{crossed} .verdict",
        timeout=10_000,
    )
    assert text(page, f"{crossed} .verdict") == "failing"
    assert text(page, f"{crossed} .reason") == reason
    figures = f'table.books tr[data-item="{ITEM}"]'
    assert "failing: " in text(page, f"{figures} .overall")
    assert "crossed" in text(page, f"{figures} .overall")
    assert text(page, f"{figures} .bid") == row["best_bid"]
    assert text(page, f"{figures} .ask") == row["best_ask"]
    shown = verdicts(page)
    assert shown == {check: WORDS[v] for check, v in row["checks"].items()}
    screenshot(page, "provider-books-1280")
    opened.clean()
    assert axe_violations(page) == []


def overview_card(app: Apiwatch) -> dict[str, Any]:
    with app.client() as client:
        response = client.get("/api/overview")
    assert response.status_code == 200, response.text
    return next(p for p in response.json()["providers"] if p["id"] == EXCHANGE)


def test_the_overview_card_says_which_book_check_fails(app: Apiwatch, admin: Any) -> None:
    card = f'article.card[data-id="{EXCHANGE}"]'
    collect(app)
    assert overview_card(app)["books_failing"] == []
    opened = open_page(admin, app.url + "/")
    assert opened.page.locator(f"{card} .book-failing").count() == 0
    opened.clean()
    app.scenario(EXCHANGE, "crossed_book")
    try:
        collect(app)
    finally:
        app.healthy(EXCHANGE)
    assert overview_card(app)["books_failing"] == ["crossed"]
    opened = open_page(admin, app.url + "/")
    page = opened.page
    assert text(page, f"{card} .book-failing") == "· book: crossed"
    assert "book: crossed" in text(page, f"{card} .facts")
    opened.clean()
    assert axe_violations(page) == []


def test_a_provider_without_books_shows_no_panel(app: Apiwatch, admin: Any) -> None:
    opened = open_page(admin, app.url + "/providers/coingecko")
    page = opened.page
    page.wait_for_timeout(300)
    assert page.locator("#books-panel").is_hidden()
    assert page.locator("#books table").count() == 0
    opened.clean()


def test_the_panel_fits_a_phone_in_dark_mode(app: Apiwatch, browser: Any) -> None:
    context = on_a_phone(browser, color_scheme="dark")
    try:
        opened = open_page(context, app.url + f"/providers/{EXCHANGE}")
        page = opened.page
        page.wait_for_selector("#books-panel:not([hidden]) table.books")
        overflow = sideways_scroll(page)
        assert overflow <= 1, f"the provider page scrolls sideways by {overflow} px on a phone"
        screenshot(page, "provider-books-phone-dark")
        opened.clean()
        assert axe_violations(page) == []
    finally:
        context.close()
