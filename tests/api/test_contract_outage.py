"""The contract while the database is away: every operation of the document is called once
with a valid request after the connection to PostgreSQL is cut (a proxy the test controls),
and each answer is held to the document with schemathesis' own checks (status declared,
headers, body schema, content type). An operation that answers the database-away 503
without declaring it fails here; so does one listed as answering from memory
(`FROM_MEMORY` in `apiwatch/api/app.py`) that does not answer.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.checks import (
    FailureGroup,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from apiwatch.api.app import FROM_MEMORY
from apiwatch.settings import Settings
from apiwatch.simulator import Simulator
from tests.api.test_api import ADMIN_KEY, KEYED, serve
from tests.faults.servers import CuttableProxy

PROVIDER = "binance"
# A valid value for each path parameter and each body; whether the id exists does not
# matter (a 404 is declared too), only that the request is one the schema allows.
PATH_VALUES = {
    "provider_id": PROVIDER,
    "provider": PROVIDER,
    "key_id": 1,
    "alert_id": 1,
    "silence_id": 1,
    "schedule_id": 1,
    "window_id": "1",
}
WINDOW = {
    "title": "outage",
    "matchers": {"provider": PROVIDER},
    "starts_at": "2030-01-01T00:00:00Z",
    "ends_at": "2030-01-01T01:00:00Z",
}
SPEC = {
    "id": "outage_probe",
    "name": "Outage probe",
    "category": "market_data",
    "base_url": "https://outage.invalid",
    "health": {"path": "/ping"},
}
BODIES: dict[tuple[str, str], Any] = {
    ("PUT", "/api/schedule/{schedule_id}"): {"enabled": True},
    ("POST", "/api/schedule/trigger"): {"provider": PROVIDER},
    ("POST", "/api/config/keys/test"): {"provider": PROVIDER},
    ("POST", "/api/keys"): {"name": "outage"},
    ("PATCH", "/api/keys/{key_id}"): {"name": "renamed"},
    ("POST", "/api/alerts/{alert_id}/acknowledge"): {},
    ("PUT", "/api/alerts/settings"): {},
    ("POST", "/api/silences"): {"matchers": {"provider": PROVIDER}, "duration_s": 60},
    ("POST", "/api/maintenance"): WINDOW,
    ("PUT", "/api/maintenance/{window_id}"): WINDOW,
    ("PATCH", "/api/maintenance/{window_id}"): {"title": "renamed"},
    ("POST", "/api/providers"): SPEC,
    ("PUT", "/api/providers/{provider_id}"): SPEC | {"id": PROVIDER},
    ("PATCH", "/api/providers/{provider_id}"): {"enabled": False},
}
CHECKS = [
    status_code_conformance,
    response_headers_conformance,
    response_schema_conformance,
    content_type_conformance,
]


def _request(method: str, path: str, operation: dict[str, Any]) -> dict[str, Any]:
    params = {}
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path":
            enum = parameter["schema"].get("enum")
            params[parameter["name"]] = enum[0] if enum else PATH_VALUES[parameter["name"]]
    request: dict[str, Any] = {"method": method, "path_parameters": params}
    if (method, path) in BODIES:
        request["body"] = BODIES[method, path]
        request["media_type"] = "application/json"
    return request


async def test_every_answer_while_the_database_is_away_is_declared(
    postgres_behind_proxy: tuple[str, str, CuttableProxy],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    via, _direct, proxy = postgres_behind_proxy
    for name, value in KEYED.items():
        monkeypatch.setenv(name, value)
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    async with Simulator(port=0) as sim:
        settings = Settings(
            _env_file=None,
            database_url=via,
            upstream_override=sim.url,
            admin_key=ADMIN_KEY,
            spill_dir=tmp_path / "spill",
        )
        server, task, port = await serve(settings)
        try:
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(
                base_url=base, timeout=30, headers={"X-API-Key": ADMIN_KEY}
            ) as client:
                document = (await client.get("/openapi.json")).json()
                loaded = schemathesis.openapi.from_dict(document)
                proxy.cut()
                for path, item in document["paths"].items():
                    for method, operation in item.items():
                        method = method.upper()
                        request = _request(method, path, operation)
                        case = loaded[path][method].Case(**request)
                        kwargs = case.as_transport_kwargs(base_url=base)
                        answer = await client.request(
                            method, kwargs["url"], json=request.get("body")
                        )
                        statuses[answer.status_code] += 1
                        try:
                            case.validate_response(answer, checks=CHECKS)
                        except FailureGroup as error:
                            failures.append(f"{method} {path} → {answer.status_code}: {error}")
                        if (method, path) in FROM_MEMORY:
                            assert answer.status_code == 200, (method, path, answer.text)
                        if answer.status_code == 503:
                            assert "database is unavailable" in answer.json()["detail"]
                            assert answer.headers["retry-after"] == "5"
        finally:
            proxy.restore()  # a clean stop writes what was kept back
            server.should_exit = True
            await task
    assert not failures, "\n".join(failures)
    # The outage was real: most operations needed the database and said so.
    assert statuses[503] >= 30, statuses
