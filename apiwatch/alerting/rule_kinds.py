"""The alert rules by name, the failure class and suggested action behind each, and the
small helpers the rule code shares (fingerprints, thresholds with hysteresis, event times)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from apiwatch.alerting.model import AlertNotice
from apiwatch.domain import Outcome, Severity


class Rule(StrEnum):
    RESPONSE_TIME = "response_time"
    ERROR_RATE = "error_rate"
    LATENCY_ANOMALY = "latency_anomaly"
    PROVIDER_STATUS = "provider_status"
    RATE_LIMIT_WARNING = "rate_limit_warning"
    RATE_LIMIT_BLOCKED = "rate_limit_blocked"
    KEY_EXPIRED = "key_expired"
    BREAKER_OPEN = "breaker_open"
    DATA_STALE = "data_stale"
    DATA_DIVERGENT = "data_divergent"
    BOOK_INTEGRITY = "book_integrity"
    INBOUND_USAGE_SPIKE = "inbound_usage_spike"
    INBOUND_UNAUTHORIZED = "inbound_unauthorized"
    SLO_BURN = "slo_burn"
    # A provider's TLS certificate expires soon, or does not verify or cover the host name.
    TLS_CERTIFICATE = "tls_certificate"
    # apiwatch's own services (Redis, the database): a monitor must not fail silent.
    APIWATCH_DEPENDENCY_DOWN = "apiwatch_dependency_down"


INBOUND_CATEGORY = "inbound_api"

# The failure class behind each rule that has one; the remediation table says what to do.
RULE_OUTCOMES: dict[str, Outcome] = {
    Rule.RESPONSE_TIME: Outcome.SLOW,
    Rule.LATENCY_ANOMALY: Outcome.SLOW,
    Rule.RATE_LIMIT_WARNING: Outcome.RATE_LIMITED,
    Rule.RATE_LIMIT_BLOCKED: Outcome.RATE_LIMITED,
    Rule.KEY_EXPIRED: Outcome.AUTH_ERROR,
}

ACTIONS: dict[str, str] = {
    Rule.TLS_CERTIFICATE: (
        "The provider's TLS certificate expires soon or is not accepted: once it fails, "
        "every request to the provider fails. Tell the vendor (their status page or support) "
        "with the certificate's host and expiry; check the chain and host name it presents."
    ),
    Rule.SLO_BURN: (
        "The provider fails often enough to spend its error budget well before the window "
        "ends. Check its incidents and last failures; move traffic to another provider, or "
        "take it up with the vendor if it keeps missing its objective."
    ),
    Rule.BREAKER_OPEN: (
        "apiwatch stopped probing this provider after repeated failures and tries again after "
        "the cooldown. Check the provider's status page and the last failures' reasons."
    ),
    Rule.DATA_STALE: (
        "The provider answers on time but serves old data. Check its status page; prefer "
        "another provider for this item until it catches up."
    ),
    Rule.DATA_DIVERGENT: (
        "This provider's value strays from the other providers' median. Check the item's "
        "mapping (symbol, unit, quote currency) and the provider's status."
    ),
    Rule.BOOK_INTEGRITY: (
        "The exchange answers 200 OK with a book or ticker that cannot be true (crossed, "
        "frozen, stale, thin, or away from the other venues). Stop feeding it to trading "
        "until it passes again; check the venue's status and use another venue meanwhile."
    ),
    Rule.INBOUND_USAGE_SPIKE: (
        "A client calls the API far above its usual rate. Check who owns the key and whether "
        "the traffic is expected; lower its limit or revoke the key if not."
    ),
    Rule.INBOUND_UNAUTHORIZED: (
        "Repeated rejected requests: a client with a wrong or revoked key, or someone probing. "
        "Contact the key's owner, or block the address."
    ),
}

KNOWN_OUTCOMES = sorted(Outcome, key=lambda o: -len(o.value))


@dataclass
class Firing:
    notice: AlertNotice
    expires_at: datetime | None = None


def fingerprint(rule: str, provider: str | None, severity: Severity, item: str | None) -> str:
    base = f"{rule}:{provider or '-'}:{severity.value}"
    return f"{base}:{item}" if item else base


def level_for(
    value: float, *, warning: float, critical: float, current: Severity | None, clear: float
) -> Severity | None:
    """Severity for `value`; a level already firing holds until value < threshold * clear,
    so a value hovering at a threshold does not flap."""
    if value > critical or (current is Severity.CRITICAL and value > critical * clear):
        return Severity.CRITICAL
    if value > warning or (current is not None and value > warning * clear):
        return Severity.WARNING
    return None


def parse_time(value: Any) -> datetime | None:
    """An event's time (a datetime or ISO text); naive times are taken as UTC."""
    moment = value if isinstance(value, datetime) else None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment
