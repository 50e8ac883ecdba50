"""The provider page's TLS certificate line in real headless Chromium, against a running
apiwatch whose provider lives on a local TLS server with a certificate five days from
expiry: days left, the word and the warning colour, as `GET /api/providers/{id}` gives them.
"""

from __future__ import annotations

import http.server
import math
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.certificates.conftest import server_context, write_provider
from tests.web.support import Apiwatch, open_page, require_browser, screenshot, start_apiwatch

PROVIDER = "tls_soon"


class _Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


def _tls_server(context: ssl.SSLContext) -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Apiwatch]:
    require_browser()
    workdir = tmp_path_factory.mktemp("web-certs")
    ca = trustme.CA()
    ca_file = workdir / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    context, _ = server_context("expiring", ca, workdir)
    server = _tls_server(context)
    try:
        catalogue = workdir / "catalogue"
        write_provider(catalogue, PROVIDER, f"https://127.0.0.1:{server.server_address[1]}")
        settings = {
            "APIWATCH_CATALOGUE_DIR": str(catalogue),
            "APIWATCH_TLS_CA_FILE": str(ca_file),
            # The provider is probed at its own base URL; only it is ever triggered here.
            "APIWATCH_UPSTREAM_OVERRIDE": "",
        }
        for running in start_apiwatch(Path(workdir), **settings):
            running.trigger(provider=PROVIDER)
            yield running
    finally:
        server.shutdown()
        server.server_close()


def test_the_provider_page_shows_days_left_with_a_warning_word_and_colour(
    app: Apiwatch, admin: Any
) -> None:
    with app.client() as client:
        certificate = client.get(f"/api/providers/{PROVIDER}").json()["certificate"]
    assert certificate is not None and certificate["state"] == "critical"
    opened = open_page(admin, f"{app.url}/providers/{PROVIDER}")
    page = opened.page
    line = page.locator("#certificate")
    text = " ".join(line.inner_text().split())
    assert f"{math.floor(certificate['days_left'])} days left" in text
    badge = line.locator(".status")
    assert badge.inner_text() == "expires very soon"
    assert badge.get_attribute("data-state") == "critical"
    assert "s-offline" in (badge.get_attribute("class") or "")
    colour = badge.evaluate("el => getComputedStyle(el).color")
    plain = page.locator("#head h1").evaluate("el => getComputedStyle(el).color")
    assert colour != plain  # the warning colour, not the text's
    screenshot(page, "provider-certificate")
    opened.clean()
