"""The API's contract in one place: the OpenAPI document tells what the server really does.

FastAPI writes each operation from its route; `install(app, policy=...)` then completes the
document for every route at once, so a route added anywhere gets the same treatment:

- security from the access policy (`policy(method, path)`: public, read or admin), so
  `/docs` offers Authorize with an `X-API-Key`, and each operation says which key it needs;
- the refusals of the inbound middleware (401, 403, 429) with their exact `detail` strings,
  and the `X-RateLimit-*` and `Retry-After` headers on the responses that carry them;
- one error model (`{"detail": "..."}`) and one shape for every 422 body (a list of
  `{loc, msg, type}`), also for a router's own `HTTPException(422, "text")`;
- 405 with an `Allow` header listing every method the path has, not one route's;
- 503 with `Retry-After` while the database is away, on every operation but those that
  answer from memory (`from_memory`).

Routers declare only what their handlers raise: `responses=errors(404, 409)`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from apiwatch.inbound import Access
from apiwatch.inbound.middleware import ADMIN_REQUIRED, INACTIVE, INVALID, MISSING

SCHEME = "ApiKey"
WINDOWS = ("Minute", "Hour", "Day")
RATE_HEADERS = tuple(
    f"X-RateLimit-{w}-{part}" for w in WINDOWS for part in ("Limit", "Remaining", "Reset")
)
# The middleware's two 429 bodies; the number is the same as in Retry-After.
TOO_MANY = (
    r"^(Rate limit exceeded for (minute|hour|day)"
    r"|Too many failed API key attempts from this address)\. Try again in \d+ seconds$"
)
OPERATIONS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


class StrictBody(BaseModel):
    """The base of a JSON request body: unknown fields refused, and each value taken as the
    schema states it (pydantic's lax reading would take `0` for false, `"5"` for 5 and 1.0
    for an integer, which the schema forbids). Fields parsed from strings (date-times,
    enums) say `strict=False`: in a body they arrive as JSON strings."""

    model_config = ConfigDict(extra="forbid", strict=True)


def _json_integer(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("expected an integer")
    return value


def integer(**bounds: int) -> Any:
    """A body's integer as JSON Schema has it: 5 or 5.0, not 5.5, "5" or true; `bounds` as
    for `Field` (`ge=1, le=100`)."""
    return Annotated[int, Field(strict=False, **bounds), BeforeValidator(_json_integer)]


class ErrorOut(BaseModel):
    """Every refusal except 422: what went wrong, in words."""

    detail: str


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorOut(BaseModel):
    """Every 422: the request does not match the schema; where, what and why."""

    detail: list[FieldError]


DESCRIPTIONS = {
    400: "Well-formed, but its values contradict each other (see the operation's description)",
    404: "No such resource",
    409: "Conflicts with the current state or configuration",
    503: "The feature is not enabled in this runtime",
}
DATABASE_AWAY = (
    "The database is unavailable: wait Retry-After seconds (`/api/status` and "
    "`/api/providers` answer from memory meanwhile)"
)


def errors(*codes: int, **described: str) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route whose handler raises these statuses, in the shared error
    model: `errors(404, 409)`, or with a description of its own, `errors(**{"404": "..."})`."""
    out: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorOut, "description": DESCRIPTIONS.get(code, "Refused")}
        for code in codes
    }
    for code, description in described.items():
        out[int(code)] = {"model": ErrorOut, "description": description}
    return out


def body_schema(*, min_properties: int = 0) -> Callable[[dict[str, Any], type], None]:
    """`json_schema_extra` for a request body whose optional fields may be left out but not
    sent as null (declared `x: float = Field(default=None)`): the schema then says so, and
    `min_properties` states "send at least one field" instead of a check in the handler."""

    def extra(schema: dict[str, Any], cls: type) -> None:
        for prop in schema.get("properties", {}).values():
            if "default" in prop and prop["default"] is None and "anyOf" not in prop:
                del prop["default"]
        if min_properties:
            schema["minProperties"] = min_properties

    return extra


def _error_content(detail: dict[str, Any]) -> dict[str, Any]:
    return {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"detail": detail},
                "required": ["detail"],
            }
        }
    }


# Why any request may get 400, whatever the operation's own reasons: the app-wide checks
# (`query_check.py`, `RefuseNul` in `app.py`) and FastAPI's answer to a body it cannot decode.
ANY_REQUEST_400 = (
    "a query parameter the operation does not declare (the answer names it and the known ones)",
    "a NUL byte (`%00`) in the path or query string",
)
UNREADABLE_BODY = "a body that is not UTF-8 or not JSON"


def _rate_headers() -> dict[str, Any]:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in RATE_HEADERS}


def _components(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})[SCHEME] = {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "An apiwatch key (`aw_…`): a read key for read routes, an admin key "
        "for everything. Create keys with `POST /api/keys` or `apiwatch keys create`.",
    }
    headers = components.setdefault("headers", {})
    for window in WINDOWS:
        lower = window.lower()
        headers[f"X-RateLimit-{window}-Limit"] = {
            "description": f"Requests this key may make per {lower}",
            "schema": {"type": "integer", "minimum": 1},
        }
        headers[f"X-RateLimit-{window}-Remaining"] = {
            "description": f"Requests left in the current {lower}",
            "schema": {"type": "integer", "minimum": 0},
        }
        headers[f"X-RateLimit-{window}-Reset"] = {
            "description": f"Seconds until the current {lower} window ends",
            "schema": {"type": "integer", "minimum": 0},
        }
    headers["Retry-After"] = {
        "description": "Seconds to wait before trying again",
        "schema": {"type": "integer", "minimum": 0},
    }
    schemas = components.setdefault("schemas", {})
    schemas.setdefault("ErrorOut", ErrorOut.model_json_schema())
    # FastAPI's own validation error allows `input` and `ctx`; apiwatch never echoes input.
    schemas["ValidationError"] = FieldError.model_json_schema()
    schemas["HTTPValidationError"] = {
        "type": "object",
        "title": "HTTPValidationError",
        "properties": {
            "detail": {"type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}}
        },
        "required": ["detail"],
    }


def _refusals(access: Access) -> dict[str, dict[str, Any]]:
    forbidden = [INACTIVE, ADMIN_REQUIRED] if access == "admin" else [INACTIVE]
    return {
        "401": {
            "description": "No key, or a key apiwatch does not know",
            "content": _error_content({"type": "string", "enum": [MISSING, INVALID]}),
        },
        "403": {
            "description": "The key is inactive"
            + (", or it is a read key and this needs an admin key" if access == "admin" else ""),
            "headers": _rate_headers(),
            "content": _error_content({"type": "string", "enum": forbidden}),
        },
        "429": {
            "description": "A limit of this key is used up, or this address failed "
            "authentication too often; wait Retry-After seconds",
            "headers": {
                "Retry-After": {"$ref": "#/components/headers/Retry-After"},
                **_rate_headers(),
            },
            "content": _error_content({"type": "string", "pattern": TOO_MANY}),
        },
    }


def _database_away(responses: dict[str, Any]) -> None:
    """Add the database-away 503 (the `database_away` handler in `app.py`); a route's own
    503 ("not enabled") gets its description extended and the header added."""
    response = responses.setdefault(
        "503",
        {
            "description": DATABASE_AWAY,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
        },
    )
    if response["description"] != DATABASE_AWAY:
        response["description"] = f"{response['description']}; or: {DATABASE_AWAY}"
    response.setdefault("headers", {})["Retry-After"] = {"$ref": "#/components/headers/Retry-After"}


def _bad_request(operation: dict[str, Any]) -> None:
    """The 400 of an operation names every reason, the app-wide ones after its own."""
    response = operation["responses"].setdefault(
        "400",
        {
            "description": "Refused",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
        },
    )
    reasons = ANY_REQUEST_400 + ((UNREADABLE_BODY,) if "requestBody" in operation else ())
    for reason in reasons:
        if reason.lower() not in response["description"].lower():
            response["description"] += f"; or {reason}"


def _json_refusals(responses: dict[str, Any]) -> None:
    """Every refusal is JSON, also on a route whose `response_class` is HTML or SVG (FastAPI
    writes that media type onto the error responses too)."""
    for status, response in responses.items():
        content = response.get("content")
        if status[0] not in "45" or not content:
            continue
        json_media = content.get("application/json") or next(iter(content.values()))
        response["content"] = {"application/json": json_media}


def _hoist_definitions(operation: dict[str, Any], schemas: dict[str, Any]) -> None:
    """A body schema a route states itself (`openapi_extra`, made with
    `ref_template="#/components/schemas/{model}"`) brings its `$defs`: they go where its
    references point."""
    for media in operation.get("requestBody", {}).get("content", {}).values():
        for name, definition in media.get("schema", {}).pop("$defs", {}).items():
            schemas.setdefault(name, definition)


def _who(access: Access, public_read: bool) -> str:
    if access == "public":
        return "**Public**: no key needed."
    if access == "admin":
        return "**Needs an admin key** (`X-API-Key`)."
    if access == "keyed":
        return "**Needs a read or admin key** (`X-API-Key`), also when reads are public."
    if public_read:
        return (
            "**Read**: public on this server (`APIWATCH_PUBLIC_READ=true`); "
            "a key sent anyway is checked and counted."
        )
    return "**Needs a read or admin key** (`X-API-Key`)."


def complete(
    schema: dict[str, Any],
    policy: Callable[[str, str], Access],
    *,
    public_read: bool,
    from_memory: frozenset[tuple[str, str]] = frozenset(),
) -> dict[str, Any]:
    """The document with security, refusals and rate-limit headers added to every operation;
    `from_memory` are the (METHOD, path) operations that never need the database."""
    _components(schema)
    for path, item in schema.get("paths", {}).items():
        for method in OPERATIONS:
            operation = item.get(method)
            if operation is None:
                continue
            _hoist_definitions(operation, schema["components"]["schemas"])
            access = policy(method.upper(), path)
            who = _who(access, public_read)
            text = operation.get("description", "")
            operation["description"] = f"{who}\n\n{text}".strip()
            responses = operation.setdefault("responses", {})
            if (method.upper(), path) not in from_memory:
                _database_away(responses)
            _bad_request(operation)
            _json_refusals(responses)
            if access == "public":
                operation["security"] = []
                continue
            operation["security"] = (
                [{SCHEME: []}, {}] if access == "read" and public_read else [{SCHEME: []}]
            )
            for response in responses.values():
                # Set on every answer to a request with a known, active key that passed its limits.
                response.setdefault("headers", {}).update(_rate_headers())
            for status, refusal in _refusals(access).items():
                responses.setdefault(status, copy.deepcopy(refusal))
    return schema


def routes(app: FastAPI) -> list[Any]:
    """Every HTTP route of the app, included routers' too, with `path`, `path_regex` and
    `methods` (FastAPI keeps included routers as branches, not one flat list)."""
    return [
        route
        for route in iter_route_contexts(app.router.routes)
        if route.methods and getattr(route, "path_regex", None) is not None
    ]


def allowed_methods(request: Request) -> list[str]:
    """Every method some route answers at this request's path (Starlette's own 405 names
    only the first route whose path matched)."""
    root = request.scope.get("root_path", "")
    path = request.scope["path"]
    if root and path.startswith(root):
        path = path[len(root) :] or "/"
    methods: set[str] = set()
    for route in routes(request.app):
        if route.path_regex.match(path):
            methods |= set(route.methods)
    return sorted(methods)


async def _http_error(request: Request, exc: Exception) -> Any:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        allow = ", ".join(allowed_methods(request))
        return JSONResponse(
            {"detail": "Method Not Allowed"}, status_code=405, headers={"Allow": allow}
        )
    if exc.status_code == 422 and not isinstance(exc.detail, list):
        # A handler's own check, in the same shape as the schema's.
        detail = [{"loc": [], "msg": str(exc.detail), "type": "value_error"}]
        return JSONResponse({"detail": detail}, status_code=422, headers=exc.headers)
    return await http_exception_handler(request, exc)


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Where, what and why, without echoing the input: it may be a secret, and a NaN in
    # it cannot even be written as JSON (the default handler answers that with a 500).
    detail = [
        {
            "loc": list(error.get("loc", ())),
            "msg": error.get("msg", ""),
            "type": error.get("type", ""),
        }
        for error in exc.errors()
    ]
    return JSONResponse(status_code=422, content={"detail": detail})


def install(
    app: FastAPI,
    *,
    policy: Callable[[str, str], Access],
    public_read: bool,
    from_memory: frozenset[tuple[str, str]] = frozenset(),
) -> None:
    """Complete `app`'s OpenAPI document and install the error handlers that keep it true."""
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(HTTPException, _http_error)
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(
                build(), policy, public_read=public_read, from_memory=from_memory
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
