"""Why the inbound middleware refuses a request: the details it answers with (built once)
and the fixed word each refusal is counted under (the usage record's `refusal`, a bounded
metrics label)."""

from __future__ import annotations

import json

from apiwatch.inbound.keys import ApiKeyRecord

MISSING = "Missing API key"
INVALID = "Invalid API key"
INACTIVE = "API key is inactive"
ADMIN_REQUIRED = "Admin API key required"
LIMITER_DOWN = "Rate limiter unavailable"
KEYS_DOWN = "API keys cannot be checked right now (the database does not answer); retry shortly"
TOO_MANY_FAILURES = "Too many failed API key attempts from this address"


def error_body(detail: str) -> bytes:
    return json.dumps({"detail": detail}).encode()


FIXED_BODIES = {
    detail: error_body(detail) for detail in (MISSING, INVALID, INACTIVE, ADMIN_REQUIRED)
}
KEYS_DOWN_BODY = error_body(KEYS_DOWN)
_REFUSALS = {
    FIXED_BODIES[MISSING]: "missing_key",
    FIXED_BODIES[INVALID]: "invalid_key",
    FIXED_BODIES[INACTIVE]: "inactive_key",
    FIXED_BODIES[ADMIN_REQUIRED]: "admin_required",
}
# A key over one of its windows is refused as `rate_limited_<window>`.
RATE_LIMITED = {window: f"rate_limited_{window}" for window in ("minute", "hour", "day")}
REFUSAL_REASONS = (
    "missing_key",
    "invalid_key",
    "inactive_key",
    "admin_required",
    *RATE_LIMITED.values(),
    "failed_auth_throttled",
    "limiter_unavailable",
    "key_check_unavailable",
)


def refusal_reason(
    status: int, body: bytes, key: ApiKeyRecord | None, window: str | None = None
) -> str:
    """Why a request was refused, as one of `REFUSAL_REASONS`; `window` names the key's
    full window of a 429 (minute when not given)."""
    if status == 429:
        if key is None:
            return "failed_auth_throttled"
        return RATE_LIMITED.get(window or "minute", RATE_LIMITED["minute"])
    if status == 503:
        return "key_check_unavailable" if body == KEYS_DOWN_BODY else "limiter_unavailable"
    return _REFUSALS.get(body, "missing_key" if status == 401 else "admin_required")
