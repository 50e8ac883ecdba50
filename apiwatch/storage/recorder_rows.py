"""What the recorder stores for each domain type, and which write errors are the rows' fault.

A new kind of record is one entry in `ROW_MAPPERS`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

from apiwatch.domain import ProbeResult, StatusChange

Row = dict[str, Any]
RowFunction = Callable[[Any], Row]


def probe_result_row(result: ProbeResult) -> Row:
    # The payload and headers are for collectors and budgets; they are never stored here.
    return {
        "provider": result.provider,
        "endpoint": result.endpoint,
        "outcome": str(result.outcome),
        "status_code": result.status_code,
        "latency_ms": result.latency_ms,
        "reason": result.reason,
        "attempt": result.attempt,
        "final": result.final,
        "key_label": result.key_label,
        "response_bytes": result.response_bytes,
        "started_at": result.started_at,
        "location": result.location,
    }


def status_change_row(change: StatusChange) -> Row:
    return {
        "provider": change.provider,
        "old_status": str(change.old),
        "new_status": str(change.new),
        "reason": change.reason,
        "changed_at": change.at,
    }


# What the recorder knows how to store: a domain type -> (table, row function).
# A new kind of record is one entry here.
ROW_MAPPERS: dict[type, tuple[str, RowFunction]] = {
    ProbeResult: ("connection_attempts", probe_result_row),
    StatusChange: ("status_changes", status_change_row),
}


def is_bad_row_error(error: BaseException) -> bool:
    """True when retrying the same rows cannot succeed: the rows themselves are wrong."""
    if isinstance(error, IntegrityError | DataError):
        return True
    # SQLSTATE class 22 (data exception, e.g. a NUL byte in text on PostgreSQL) is about
    # the values, not the database's health: retrying the same rows would block forever.
    sqlstate = getattr(getattr(error, "orig", None), "sqlstate", None) or getattr(
        getattr(error, "orig", None), "pgcode", None
    )
    if isinstance(sqlstate, str) and sqlstate.startswith(("22", "54")):
        # Class 54 (program limit exceeded, e.g. an index row over PostgreSQL's 2,704
        # bytes) is about the row too.
        return True
    # A StatementError that is not a DBAPIError was raised before the database saw the
    # statement, while binding a value (e.g. a naive datetime).
    if isinstance(error, StatementError) and not isinstance(error, DBAPIError):
        return True
    return isinstance(error, TypeError | ValueError)
