"""The API contract: schemathesis against the ASGI app, with an admin key and a read key,
every check, and the stateful phase along the document's links (create key → patch key →
delete key; create silence → delete silence is linked too); plus the document itself validated as
OpenAPI 3.1 and the routing rules (405 with a true `Allow`, no route shadowing another).

The app runs on SQLite with the simulator as every upstream (its own thread and loop), so
nothing leaves 127.0.0.1. Examples per operation: CONTRACT_EXAMPLES (default 4,
which keeps the module well under 3 minutes on the 2-core machine).
"""

from __future__ import annotations

import asyncio
import copy
import os
import threading
import tomllib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis.config import ApiKeyAuthConfig
from schemathesis.config._checks import POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES
from schemathesis.python import asgi

from apiwatch.api import contract
from apiwatch.api.app import FROM_MEMORY, NUL_REFUSED, access_policy, create_app
from apiwatch.api.routers.pages import is_public_page
from apiwatch.inbound import hash_key, key_prefix
from apiwatch.settings import Settings
from apiwatch.simulator import Simulator
from apiwatch.storage.db import create_engine, create_sessionmaker
from apiwatch.storage.migrate import upgrade_sync
from apiwatch.storage.repositories import api_keys as key_repo
from tests.api.test_api import KEYED

ADMIN = "aw_contract-tests-admin-key-000000000000000"
READ = "aw_contract-tests-read-key-0000000000000000"
EXAMPLES = int(os.environ.get("CONTRACT_EXAMPLES", "4"))

# schemathesis gives every operation's item of a test the same node id; pytest-xdist hands
# out tests by node id and so would run one operation per test instead of all of them.
# `make test` runs this module in a plain pytest of its own, beside the parallel run, and
# leaves it out of the others: collecting it builds its examples (a minute of CPU).


class SimulatorThread:
    """The simulator on a loop of its own, so the ASGI app's portal thread can reach it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.sim: Simulator | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.sim = Simulator(port=0)
        self.loop.run_until_complete(self.sim.start())
        self.ready.set()
        self.loop.run_forever()

    def __enter__(self) -> str:
        self.thread.start()
        self.ready.wait(10)
        assert self.sim is not None
        return self.sim.url

    def __exit__(self, *exc: object) -> None:
        assert self.sim is not None
        asyncio.run_coroutine_threadsafe(self.sim.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


async def add_read_key(url: str) -> None:
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as session:
            await key_repo.create_key(
                session,
                name="contract-reader",
                scope="read",
                key_hash=hash_key(READ),
                prefix=key_prefix(READ),
            )
    finally:
        await engine.dispose()


class AppUnderTest:
    """The ASGI app the fuzzer calls. schemathesis binds its app when this module is
    imported, before any fixture runs; the `contract_app` fixture puts the real one here.

    schemathesis starts and ends a lifespan around every test (every operation); the real
    app's lifespan (database, runtime) runs once for the module instead, started by the
    first request in schemathesis' event loop and stopped by the fixture."""

    def __init__(self) -> None:
        self.app: Any = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._started: asyncio.Lock | None = None
        self._to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Future[None] | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].rsplit(".", 1)[-1]
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        assert self.app is not None, "the contract_app fixture sets the app"
        if self._task is None:
            await self._start()
        await self.app(scope, receive, send)

    async def _start(self) -> None:
        self.loop = asyncio.get_running_loop()
        lifespan = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        self._task = asyncio.ensure_future(self.app(lifespan, self._to_app.get, self._from_app.put))
        await self._to_app.put({"type": "lifespan.startup"})
        started = await self._from_app.get()
        assert started["type"] == "lifespan.startup.complete", started

    async def _stop(self) -> None:
        await self._to_app.put({"type": "lifespan.shutdown"})
        stopped = await self._from_app.get()
        assert self._task is not None
        await self._task
        assert stopped["type"] == "lifespan.shutdown.complete", stopped

    def stop(self) -> None:
        """End the real app's lifespan, from the fixture's thread."""
        if self.loop is not None and self._task is not None:
            asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(60)
        self.app, self.loop, self._task = None, None, None


TARGET = AppUnderTest()


@pytest.fixture(scope="module")
def contract_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('contract') / 'apiwatch.db'}"
    upgrade_sync(url)
    asyncio.run(add_read_key(url))
    saved = {name: os.environ.get(name) for name in KEYED}
    os.environ.update(KEYED)
    with SimulatorThread() as upstream:
        app = create_app(
            Settings(
                _env_file=None,
                database_url=url,
                upstream_override=upstream,
                recorder_flush_ms=10,
                admin_key=ADMIN,
                # The fuzzer sends thousands of requests and wrong keys on purpose: limits
                # high enough not to end the run in 429s (429 is declared all the same).
                api_limit_per_minute=10**6,
                api_limit_per_hour=10**7,
                api_limit_per_day=10**8,
                failed_auth_per_minute=10**6,
            ),
            start_scheduler=False,
        )
        TARGET.app = app
        try:
            yield TARGET
        finally:
            asgi.shutdown_lifespans()
            TARGET.stop()
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


@pytest.fixture(scope="module")
def own_keys(contract_app: Any) -> set[int]:
    """The fuzzer's own keys, spared from PATCH and DELETE."""
    with asgi.get_client(contract_app) as client:
        listing = client.get("/api/keys", headers={"X-API-Key": ADMIN}).json()["keys"]
    PROTECTED.update(row["id"] for row in listing)
    assert len(PROTECTED) == 2
    return PROTECTED


# The fuzzer's own keys: generated ids may hit them, and a deactivated admin key would turn
# the rest of the run into 403s (still within the contract, but testing nothing).
PROTECTED: set[int] = set()


def spare_own_keys(case: Any) -> None:
    params = case.path_parameters or {}
    if case.operation.path.startswith("/api/keys/") and params.get("key_id") in PROTECTED:
        params["key_id"] = 2**31 - 1


@pytest.fixture(scope="module")
def document(contract_app: Any) -> dict[str, Any]:
    with asgi.get_client(contract_app) as client:
        return client.get("/openapi.json").json()


# Loaded when the module is, from an app like the fixture's (the document does not depend on
# the database); each call goes to the fixture's app, and a test checks both documents match.
# (schemathesis' `from_fixture` does not run on pytest 9.)
DOCUMENT = create_app(Settings(_env_file=None)).openapi()


def keyed_schema(key: str) -> Any:
    """The document with `key` as the `ApiKey` scheme's value: schemathesis sends it, and
    leaves it out or spoils it where a check needs that (ignored_auth)."""
    loaded = schemathesis.openapi.from_dict(copy.deepcopy(DOCUMENT))  # it adds to its copy
    loaded.app = TARGET
    loaded.config.auth.openapi.schemes["ApiKey"] = ApiKeyAuthConfig(api_key=key)
    return loaded


schema = keyed_schema(ADMIN)
# What a read key may call (the same policy the middleware applies); the rest answers 403
# to it, which test_access checks route by route.
reader_schema = keyed_schema(READ).include(
    func=lambda ctx: access_policy(ctx.operation.method.upper(), ctx.operation.path) == "read"
)
# Answers per key, so a run that was refused throughout (a key that never worked) fails.
ANSWERS: Counter[tuple[str, int]] = Counter()
FAST = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


@schema.parametrize()
@FAST
def test_every_operation_keeps_its_contract_with_an_admin_key(
    case: Any, contract_app: Any, own_keys: set[int]
) -> None:
    spare_own_keys(case)
    ANSWERS["admin", case.call_and_validate().status_code] += 1


@reader_schema.parametrize()
@FAST
def test_every_operation_keeps_its_contract_with_a_read_key(
    case: Any, contract_app: Any, own_keys: set[int]
) -> None:
    spare_own_keys(case)
    ANSWERS["read", case.call_and_validate().status_code] += 1


def test_both_keys_were_let_in_most_of_the_time() -> None:
    for key in ("admin", "read"):
        answers = {status: n for (who, status), n in ANSWERS.items() if who == key}
        ok = sum(n for status, n in answers.items() if 200 <= status < 300)
        assert ok > 50 and not answers.get(500), (key, answers)


def test_stateful_links_create_patch_and_delete_keys(contract_app: Any, own_keys: set[int]) -> None:
    steps: Counter[tuple[str, str, int]] = Counter()

    # The operations the links join: each run is a chain along them, not a random walk
    # over thirty operations that seldom reaches the second step.
    linked = schema.include(
        operation_id=[
            "create_key",
            "update_key",
            "delete_key",
            "key_usage",
            "list_keys",
            "create_silence",
            "delete_silence",
        ]
    )

    class Machine(linked.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: Any) -> None:
            spare_own_keys(case)
            super().before_call(case)

        def after_call(self, response: Any, case: Any) -> None:
            steps[case.method, case.operation.path, response.status_code] += 1
            super().after_call(response, case)

    Machine.run(
        settings=settings(
            max_examples=EXAMPLES * 2,
            stateful_step_count=8,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        )
    )
    # The links were followed: keys and silences were created, changed and deleted.
    for step in (
        ("POST", "/api/keys", 201),
        ("PATCH", "/api/keys/{key_id}", 200),
        ("DELETE", "/api/keys/{key_id}", 204),
    ):
        assert steps[step], (step, sorted(steps.items()))


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)
    assert document == DOCUMENT  # what the fuzzer reads is what the server serves


def test_every_keyed_operation_declares_its_key_and_refusals(document: dict[str, Any]) -> None:
    scheme = document["components"]["securitySchemes"]["ApiKey"]
    assert scheme == {**scheme, "type": "apiKey", "in": "header", "name": "X-API-Key"}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            # The database-away 503 (tests/api/test_contract_outage.py answers it for real).
            if (method.upper(), path) not in FROM_MEMORY:
                away = operation["responses"]["503"]
                assert "Retry-After" in away["headers"], (method, path)
                assert away["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/ErrorOut"
                }, (method, path)
            security = operation["security"]
            # Public: liveness, and the status page's JSON, its feed and the badges.
            if path in ("/healthz",) or is_public_page(path):
                assert security == [], (method, path)
                continue
            assert security == [{"ApiKey": []}], (method, path)
            for status in ("401", "403", "429"):
                assert status in operation["responses"], (method, path, status)
            headers = operation["responses"]["429"]["headers"]
            assert "Retry-After" in headers and "X-RateLimit-Minute-Remaining" in headers
            ok = next(r for s, r in operation["responses"].items() if s.startswith("2"))
            assert "X-RateLimit-Day-Reset" in ok["headers"], (method, path)
            need = "admin" if method != "get" and "acknowledge" not in path else "read"
            if path.startswith(
                ("/api/keys", "/api/usage/keys", "/api/usage/refusals", "/api/config/keys")
            ):
                need = "admin"
            said = "Needs an admin key" in operation["description"]
            assert said == (need == "admin"), (method, path)
            if path.endswith("/acknowledge"):  # a read key, but never no key
                assert "also when reads are public" in operation["description"]


def test_links_join_key_creation_to_patch_and_delete(document: dict[str, Any]) -> None:
    links = document["paths"]["/api/keys"]["post"]["responses"]["201"]["links"]
    targets = {link["operationId"] for link in links.values()}
    assert {"update_key", "delete_key"} <= targets
    for link in links.values():
        assert link["parameters"] == {"key_id": "$response.body#/id"}


def test_a_method_the_path_lacks_gets_405_with_every_method_it_has(contract_app: Any) -> None:
    with asgi.get_client(contract_app) as client:
        headers = {"X-API-Key": ADMIN}
        shadowed = client.put("/api/schedule/trigger", json={}, headers=headers)
        settings_ = client.delete("/api/alerts/settings", headers=headers)
        keys = client.put("/api/keys", json={}, headers=headers)
    assert shadowed.status_code == 405 and shadowed.headers["allow"] == "POST"
    assert settings_.status_code == 405 and settings_.headers["allow"] == "GET, PUT"
    assert keys.status_code == 405 and keys.headers["allow"] == "GET, POST"
    assert shadowed.json() == {"detail": "Method Not Allowed"}


def test_no_route_shadows_another(contract_app: Any) -> None:
    """A literal path of one route must not be captured by another route's parameters for
    a method the first lacks (PUT /api/schedule/trigger once reached PUT /{schedule_id})."""
    routes = contract.routes(contract_app.app)
    assert len(routes) > 20
    for route in routes:
        if "{" in route.path:
            continue
        for other in routes:
            if other.path == route.path or not (set(other.methods) - set(route.methods)):
                continue
            assert not other.path_regex.match(route.path), (route.path, other.path)


def test_a_key_cannot_lock_itself_out(contract_app: Any, own_keys: set[int]) -> None:
    with asgi.get_client(contract_app) as client:
        admin = {"X-API-Key": ADMIN}
        listing = client.get("/api/keys", headers=admin).json()["keys"]
        own = next(row["id"] for row in listing if row["scope"] == "admin")
        deleted = client.delete(f"/api/keys/{own}", headers=admin)
        limited = client.patch(f"/api/keys/{own}", json={"day_limit": 1}, headers=admin)
        still = client.get("/api/keys", headers=admin)
    assert deleted.status_code == limited.status_code == 409
    assert "another admin key" in deleted.json()["detail"]
    assert still.status_code == 200


def test_every_422_has_one_shape(contract_app: Any) -> None:
    headers = {"X-API-Key": ADMIN}
    with asgi.get_client(contract_app) as client:
        answers = [
            client.patch("/api/keys/1", json={}, headers=headers),
            client.put("/api/schedule/1", json={}, headers=headers),
            client.get("/api/logs", params={"limit": 0}, headers=headers),
            client.post(
                "/api/silences", json={"matchers": {"": "x"}, "duration_s": 5}, headers=headers
            ),
        ]
    for answer in answers:
        assert answer.status_code == 422, answer.text
        detail = answer.json()["detail"]
        assert isinstance(detail, list) and detail, answer.text
        assert all(set(error) == {"loc", "msg", "type"} for error in detail), answer.text


def test_a_nul_byte_gets_the_declared_400(contract_app: Any, document: dict[str, Any]) -> None:
    """Refused before anything else looks at it (PostgreSQL cannot store one), with the 400
    every operation declares, in the shared error model: in the query, in a path parameter,
    and on an operation that takes no parameters at all."""
    headers = {"X-API-Key": ADMIN}
    with asgi.get_client(contract_app) as client:
        answers = {
            ("get", "/api/logs"): client.get("/api/logs?provider=a%00b", headers=headers),
            ("get", "/api/providers/{provider_id}"): client.get(
                "/api/providers/a%00b", headers=headers
            ),
            ("get", "/healthz"): client.get("/healthz?x=%00"),
        }
    error_model = document["components"]["schemas"]["ErrorOut"]
    for (method, path), answer in answers.items():
        declared = document["paths"][path][method]["responses"]["400"]
        assert "NUL byte" in declared["description"], path
        assert declared["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorOut"
        }, path
        assert answer.status_code == 400, (path, answer.text)
        assert answer.headers["content-type"] == "application/json"
        body = answer.json()
        assert body == {"detail": NUL_REFUSED}
        assert set(body) == set(error_model["required"]) == {"detail"}


def test_docs_page_offers_authorize(document: dict[str, Any], contract_app: Any) -> None:
    with asgi.get_client(contract_app) as client:
        page = client.get("/docs")
    assert page.status_code == 200 and "/openapi.json" in page.text
    # Swagger UI shows Authorize whenever the document has security schemes.
    assert document["components"]["securitySchemes"]["ApiKey"]["name"] == "X-API-Key"


def test_the_fuzzer_config_relaxes_nothing_but_400_for_contradictions() -> None:
    config = tomllib.loads((Path(__file__).parents[2] / "schemathesis.toml").read_text())
    assert set(config) == {"checks"} and set(config["checks"]) == {"positive_data_acceptance"}
    accepted = config["checks"]["positive_data_acceptance"]["expected-statuses"]
    assert set(accepted) - set(POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES) == {"400"}
