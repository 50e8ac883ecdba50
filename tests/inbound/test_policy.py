"""The default access policy of apiwatch's API: what is public, what needs a read key and
what needs an admin key."""

from __future__ import annotations

import pytest

from apiwatch.inbound import default_policy


@pytest.mark.parametrize(
    "path",
    ["/healthz", "/docs", "/redoc", "/openapi.json", "/metrics", "/", "/static/app.js"],
)
def test_health_docs_metrics_and_static_files_are_public(path: str) -> None:
    assert default_policy("GET", path) == "public"


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_reading_the_api_needs_a_read_key(method: str) -> None:
    assert default_policy(method, "/api/providers/binance") == "read"
    assert default_policy(method, "/api/status") == "read"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_changing_anything_under_the_api_needs_an_admin_key(method: str) -> None:
    assert default_policy(method, "/api/schedule/trigger") == "admin"
    assert default_policy(method, "/api/providers/binance") == "admin"


@pytest.mark.parametrize(
    "path", ["/api/keys", "/api/keys/3", "/api/config/keys", "/api/config/keys/test"]
)
@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PATCH", "DELETE"])
def test_key_management_needs_an_admin_key_even_to_read(method: str, path: str) -> None:
    assert default_policy(method, path) == "admin"


def test_unknown_paths_outside_the_api_are_not_opened_by_default() -> None:
    assert default_policy("GET", "/admin") == "read"
    assert default_policy("GET", "//api/keys") == "read"
