"""Fixtures every browser test module shares. Each module defines its own `app` (the
running apiwatch it tests, with the settings it needs); these build on it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.web.support import ADMIN_KEY, chromium, signed_in


@pytest.fixture(scope="module")
def browser(app: Any) -> Iterator[Any]:
    """Debian's Chromium under Playwright, once per module, after the module's `app`."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = chromium(pw)
        yield launched
        launched.close()


@pytest.fixture
def admin(browser: Any) -> Iterator[Any]:
    """A browser context signed in with the admin key, at 1280 by 900."""
    context = signed_in(browser, ADMIN_KEY, viewport={"width": 1280, "height": 900})
    yield context
    context.close()
