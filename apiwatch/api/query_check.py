"""Unknown query parameters are refused, for every route: `?provder=binance` answers 400
naming the unknown parameter and the ones the route knows, instead of being ignored.

One app-wide dependency compares the request's parameters with those its route declares
(its own and its dependencies'). WebSocket routes and mounted static files are left alone.
"""

from __future__ import annotations

from fastapi import HTTPException
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.requests import HTTPConnection

UNKNOWN_QUERY = (
    "A query parameter the operation does not declare (the answer names it and the known "
    "ones), or values that contradict each other"
)
_KNOWN: dict[int, frozenset[str]] = {}


def _declared(dependant: Dependant) -> frozenset[str]:
    names: set[str] = set()
    todo = [dependant]
    while todo:
        current = todo.pop()
        for field in current.query_params:
            annotation = field.field_info.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                # A model of query parameters: its fields are the parameters.
                names.update(f.alias or n for n, f in annotation.model_fields.items())
            else:
                names.add(field.alias)
        todo.extend(current.dependencies)
    return frozenset(names)


def known_query_parameters(route: APIRoute) -> frozenset[str]:
    known = _KNOWN.get(id(route))
    if known is None:
        known = _KNOWN[id(route)] = _declared(route.dependant)
    return known


async def reject_unknown_query(connection: HTTPConnection) -> None:
    """App-wide dependency: 400 for a query parameter the route does not declare."""
    if connection.scope["type"] != "http" or not connection.query_params:
        return
    route = connection.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = known_query_parameters(route)
    unknown = sorted(set(connection.query_params) - known)
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        plural = "parameter" if len(unknown) == 1 else "parameters"
        allowed = ", ".join(sorted(known)) if known else "none"
        raise HTTPException(
            400, f"unknown query {plural} {names} for {route.path}; known: {allowed}"
        )
