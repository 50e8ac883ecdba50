"""Value types shared by every layer: outcomes, statuses, probe results and events.

Nothing here imports from the rest of apiwatch; everything else imports from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    """What one probe of one endpoint came to (DESIGN.md §3)."""

    OK = "ok"
    SLOW = "slow"
    TIMEOUT = "timeout"
    CONNECTION_ERROR = "connection_error"
    RATE_LIMITED = "rate_limited"
    AUTH_ERROR = "auth_error"
    SERVER_ERROR = "server_error"
    CLIENT_ERROR = "client_error"
    INVALID_PAYLOAD = "invalid_payload"
    SKIPPED = "skipped"

    @property
    def is_success(self) -> bool:
        return self in (Outcome.OK, Outcome.SLOW)

    @property
    def is_failure(self) -> bool:
        """A failure counts towards offline; slow, rate_limited and skipped do not."""
        return self in FAILURE_OUTCOMES


FAILURE_OUTCOMES = frozenset(
    {
        Outcome.TIMEOUT,
        Outcome.CONNECTION_ERROR,
        Outcome.AUTH_ERROR,
        Outcome.SERVER_ERROR,
        Outcome.CLIENT_ERROR,
        Outcome.INVALID_PAYLOAD,
    }
)


class Status(StrEnum):
    """Derived health of a provider."""

    ONLINE = "online"
    DEGRADED = "degraded"
    OFFLINE = "offline"
    UNKNOWN = "unknown"


class Category(StrEnum):
    MARKET_DATA = "market_data"
    BLOCKCHAIN_EXPLORERS = "blockchain_explorers"
    NEWS = "news"
    SENTIMENT = "sentiment"
    ONCHAIN = "onchain"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class SkipReason(StrEnum):
    """Why a probe was not sent; kept as the result's reason."""

    NO_KEY = "no_key"
    RATE_LIMIT_BUDGET = "rate_limit_budget"
    CIRCUIT_OPEN = "circuit_open"
    DISABLED = "disabled"


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One probe of one endpoint. Everything downstream is derived from these."""

    provider: str
    endpoint: str
    outcome: Outcome
    started_at: datetime
    latency_ms: float | None = None
    status_code: int | None = None
    reason: str = ""
    attempt: int = 1
    final: bool = True  # False when this attempt was retried at once within the same check
    key_label: str | None = None  # masked, never the key itself
    retry_after_s: float | None = None
    response_bytes: int | None = None
    # The parsed body, for collectors; never stored by the recorder.
    payload: Any = field(default=None, repr=False, compare=False)
    # Response headers a budget may read (rate-limit headers, Retry-After).
    headers: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "endpoint": self.endpoint,
            "outcome": self.outcome.value,
            "status_code": self.status_code,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 2),
            "reason": self.reason,
            "attempt": self.attempt,
            "final": self.final,
            "key_label": self.key_label,
            "started_at": self.started_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A provider moved from one Status to another; what alerting reacts to."""

    provider: str
    old: Status
    new: Status
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ProviderState:
    """The live view of a provider that the API and CLI show."""

    provider: str
    status: Status
    reason: str
    consecutive_failures: int
    last_result: ProbeResult | None
    changed_at: datetime | None


@dataclass(frozen=True, slots=True)
class DataStale:
    """A provider's data is older than its category's TTL although it was fetched on time."""

    provider: str
    category: str
    item: str
    data_time: datetime
    age_s: float
    ttl_s: float
    at: datetime
    # True when the episode is over (fresh again): alerting resolves its alert.
    cleared: bool = False


@dataclass(frozen=True, slots=True)
class DataDivergent:
    """A provider's value for an item strays from the median across providers."""

    provider: str
    category: str
    item: str
    value: str  # the exact decimal, as text
    median: str
    deviation_pct: float
    threshold_pct: float
    at: datetime
    # True when the provider agrees with the others again (or left the comparison).
    cleared: bool = False


@dataclass(frozen=True, slots=True)
class IntervalChanged:
    """Adaptive polling (or a user) changed how often a schedule runs."""

    provider: str
    category: str
    old_interval_s: float
    new_interval_s: float
    reason: str
    at: datetime
