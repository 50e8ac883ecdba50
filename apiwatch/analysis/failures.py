"""Failure classes and what to do about each: the remediation table shown to users. Pure."""

from __future__ import annotations

from apiwatch.domain import Outcome

REMEDIATION: dict[Outcome, str] = {
    Outcome.TIMEOUT: (
        "The provider did not answer in time. Retried at once with a longer timeout; if it "
        "persists, check the provider's status page and raise timeout_s for this endpoint."
    ),
    Outcome.CONNECTION_ERROR: (
        "No connection (DNS, refused, reset or TLS). Check this host's network, DNS and proxy; "
        "if only one provider fails, check its status page or base_url."
    ),
    Outcome.RATE_LIMITED: (
        "The provider is throttling us. Wait for the reset time (Retry-After), lower the "
        "schedule's frequency, add a backup key, or upgrade the plan."
    ),
    Outcome.AUTH_ERROR: (
        "The key was rejected: it is missing, invalid, expired, or not entitled to this "
        "endpoint or chain. Check the key's environment variable and the provider's dashboard."
    ),
    Outcome.SERVER_ERROR: (
        "The provider failed (5xx). Nothing to change on our side unless it persists; then "
        "check the provider's status page and consider a backup provider for its data."
    ),
    Outcome.CLIENT_ERROR: (
        "The request itself was refused (4xx): the endpoint, parameters or plan may have "
        "changed. Compare the catalogue entry with the provider's current documentation."
    ),
    Outcome.INVALID_PAYLOAD: (
        "The provider answered with something we cannot use (not JSON, an error in a 200 body, "
        "a failed assertion, an oversized body, a body its collector cannot read or a book "
        "that fails a check). Inspect the reason; the API may have changed."
    ),
    Outcome.SLOW: (
        "Responses are slower than the endpoint's threshold. Watch for a trend; consider a "
        "closer region or a higher threshold if this is the provider's normal."
    ),
    Outcome.SKIPPED: (
        "Not sent: the reason says why (no_key: set the provider's key variables; "
        "rate_limit_budget or circuit_open: apiwatch is protecting the provider)."
    ),
}


def remediation_for(outcome: Outcome) -> str:
    return REMEDIATION.get(outcome, "")
