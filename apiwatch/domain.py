"""Value types shared by every layer: outcomes, statuses, probe results and events.

Nothing here imports from the rest of apiwatch; everything else imports from here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    """What one probe of one endpoint came to (docs/concepts.md)."""

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


class _NoHeaders(Mapping[str, str]):
    """An empty read-only mapping, one for the process: the headers of every result whose
    answer carried none a budget reads. It copies, deep-copies and pickles as itself."""

    __slots__ = ()

    def __getitem__(self, name: str) -> str:
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "NO_HEADERS"

    def __copy__(self) -> _NoHeaders:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> _NoHeaders:
        return self

    def __reduce__(self) -> str:
        return "NO_HEADERS"  # pickled by reference to this module's name


NO_HEADERS: Mapping[str, str] = _NoHeaders()


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
    # Where it was probed from (the worker's APIWATCH_LOCATION); "" when locations are unused.
    location: str = ""
    # The parsed body, for collectors; never stored by the recorder.
    payload: Any = field(default=None, repr=False, compare=False)
    # Response headers a budget may read (rate-limit headers, Retry-After). Read-only: a
    # result without any shares one empty mapping (a monitor holds hundreds of thousands).
    headers: Mapping[str, str] = field(
        default_factory=lambda: NO_HEADERS, repr=False, compare=False
    )
    # The TLS certificate this attempt's connection presented, when it was due to be read
    # (at most once per refresh interval per host); the runtime stores and announces it.
    certificate: CertificateSeen | None = field(default=None, repr=False, compare=False)

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
class BookIntegrity:
    """An exchange's order book or ticker failed an integrity check (a crossed book, a
    frozen update id, a mid away from the other venues): `check` names it, `reason` says
    what was seen. Announced once per episode of one check; `cleared` when it passes again."""

    provider: str
    item: str
    check: str
    reason: str
    at: datetime
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


@dataclass(frozen=True, slots=True)
class BudgetBurn:
    """How fast a provider burns its error budget, over several windows ending `at`.

    Published by the runtime's SLO job; the burn-rate alert rule judges it. A burn rate of 1
    spends the budget exactly over the objective's window; None means no events.
    """

    provider: str
    target: float  # the availability objective, a fraction (0.995)
    burn_rates: dict[float, float | None]  # window length in seconds -> burn rate
    at: datetime


@dataclass(frozen=True, slots=True)
class CertificateSeen:
    """The TLS certificate a provider's host presented to a probe, as read at `at`.

    `not_after` and the names are the leaf's; `chain_not_after` is the earliest expiry in
    the chain (`chain_source` says which chain: "verified", "presented" or just the "leaf").
    `verified` is whether the probe's TLS verification passed (chain and host name);
    `host_matches` is False when the certificate does not cover the host name, None when
    that is unknown. `error` is the verification failure's reason.
    """

    provider: str
    host: str
    port: int
    at: datetime
    verified: bool
    not_after: datetime | None = None
    not_before: datetime | None = None
    chain_not_after: datetime | None = None
    subject: str = ""
    issuer: str = ""
    names: tuple[str, ...] = ()
    chain_source: str = "leaf"
    host_matches: bool | None = None
    error: str = ""

    @property
    def expires_at(self) -> datetime | None:
        """The first moment some certificate of the chain stops being valid."""
        return self.chain_not_after or self.not_after

    def days_left(self, now: datetime) -> float | None:
        expires = self.expires_at
        return None if expires is None else (expires - now).total_seconds() / 86400

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "host": self.host,
            "port": self.port,
            "at": self.at,
            "verified": self.verified,
            "not_after": self.not_after,
            "not_before": self.not_before,
            "chain_not_after": self.chain_not_after,
            "subject": self.subject,
            "issuer": self.issuer,
            "names": list(self.names),
            "chain_source": self.chain_source,
            "host_matches": self.host_matches,
            "error": self.error,
        }
