"""Settings: the only module that reads the environment (and `.env`).

Everything has a default that works on a laptop with no services. The faces (`api/app.py`,
`cli.py`) build one `Settings` and pass what is needed down as arguments.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Literal

from dotenv import dotenv_values
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="APIWATCH_", env_file=".env", extra="ignore", populate_by_name=True
    )

    host: str = "127.0.0.1"
    port: int = Field(default=7860, ge=1, le=65535)
    database_url: str = Field(
        default="sqlite+aiosqlite:///data/api_monitor.db",
        validation_alias=AliasChoices("DATABASE_URL", "APIWATCH_DATABASE_URL"),
    )
    # PostgreSQL connections per process (SQLite ignores both): the recorder, the API's
    # reads and the jobs share the pool; `pool_size` stay open, `db_max_overflow` more are
    # opened under load. Mind the server's max_connections times the process count.
    db_pool_size: int = Field(default=5, ge=1, le=200)
    db_max_overflow: int = Field(default=10, ge=0, le=200)
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "APIWATCH_REDIS_URL")
    )
    # Budget counters and breaker/key state live in Redis under this prefix: two deployments
    # (or test runs) sharing one Redis keep theirs apart with different prefixes.
    redis_prefix: str = Field(default="apiwatch:", min_length=1)
    upstream_override: str | None = None
    catalogue_dir: Path | None = None
    # Providers through the API (docs/providers.md): whether the API may override a provider
    # a catalogue file defines (then the stored definition wins), and how often each process
    # looks for changes other processes made.
    provider_overrides: bool = False
    provider_sync_s: float = Field(default=5.0, gt=0)
    health_interval_s: float = Field(default=300.0, gt=0)
    probe_concurrency: int = Field(default=50, ge=1)
    # Scheduled runs at once drop below probe_concurrency while the event loop's median lag
    # stays above this (an overloaded process); 0 keeps them at probe_concurrency.
    probe_lag_target_ms: float = Field(default=10.0, ge=0)
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    # TLS certificates: how often each provider host's certificate is read from a probe's
    # own connection, and a PEM file of extra CAs probes trust besides the system's.
    tls_refresh_s: float = Field(default=21600.0, ge=60)
    tls_ca_file: Path | None = None
    status_window: int = Field(default=20, ge=1)
    recorder_batch_size: int = Field(default=500, ge=1)
    recorder_flush_ms: int = Field(default=100, ge=1)
    log_level: str = "INFO"
    # Other packages' loggers (database drivers, HTTP clients): at DEBUG they are mostly noise.
    log_level_libraries: str = "INFO"
    # `apiwatch demo` only: where its simulator listens.
    sim_port: int = Field(default=7861, ge=1, le=65535)
    log_json: bool = True
    scheduler_enabled: bool = True
    breaker_failure_threshold: int = Field(default=5, ge=1)
    breaker_cooldown_s: float = Field(default=30.0, gt=0)
    budget_warn_at: float = Field(default=0.8, gt=0, le=1)
    budget_snapshot_interval_s: float = Field(default=60.0, gt=0)
    # Data collection.
    collection_enabled: bool = True
    divergence_pct: float = Field(default=1.0, gt=0, le=100)
    freshness_ttl_s: dict[str, float] = Field(default_factory=dict)
    compliance_tolerance_s: float = Field(default=5.0, gt=0)
    compliance_tolerance_pct: float = Field(default=10.0, gt=0, le=100)
    adaptive_categories: list[str] = Field(default_factory=list)
    adaptive_move_pct: float = Field(default=1.0, gt=0)
    adaptive_lookback_min: float = Field(default=10.0, gt=0)
    adaptive_floor_s: float = Field(default=15.0, gt=0)
    rollup_interval_s: float = Field(default=300.0, gt=0)
    # Raw rows (attempts, usage, data points, compliance, events) older than this are
    # deleted hourly; hourly roll-ups, alerts, keys and schedules are kept.
    retention_days: float = Field(default=30.0, gt=0)
    # Vendor SLOs: a provider is flagged "poor SLA" after missing its objective in
    # this many consecutive windows; burn rates are judged for alerts this often.
    slo_poor_after: int = Field(default=3, ge=1, le=12)
    # The objective of every provider whose catalogue entry states none (a percentage, and
    # the rolling window in days); a provider's or endpoint's `objectives:` override them.
    slo_target: float = Field(default=99.5, gt=0, lt=100)
    slo_window_days: int = Field(default=30, ge=1, le=90)
    slo_burn_interval_s: float = Field(default=60.0, gt=0)
    # apiwatch's own API.
    public_read: bool = False
    # Registered as an admin key at start when set; otherwise the first start with no keys
    # creates one and prints it once.
    admin_key: SecretStr | None = None
    api_limit_per_minute: int = Field(default=100, ge=1)
    api_limit_per_hour: int = Field(default=1000, ge=1)
    api_limit_per_day: int = Field(default=10000, ge=1)
    failed_auth_per_minute: int = Field(default=30, ge=1)
    api_key_sync_s: float = Field(default=10.0, gt=0)
    # A key unknown to a running server is looked up in the database at once; a known one is
    # re-read at most this often, so a revocation by another process counts within it.
    api_key_recheck_s: float = Field(default=1.0, gt=0)
    # The live feed, GET /ws/live: a client's outbox holds this many messages
    # (the oldest log entries are dropped past it), a client whose send has not completed
    # for `live_stuck_after_s` is disconnected.
    live_queue_size: int = Field(default=1000, ge=10)
    live_status_interval_s: float = Field(default=10.0, gt=0)
    live_ping_interval_s: float = Field(default=30.0, gt=0)
    live_stuck_after_s: float = Field(default=30.0, gt=0)
    # With REDIS_URL set, feed messages cross processes on this pub/sub channel.
    live_redis_channel: str = Field(default="apiwatch:live", min_length=1)
    # GET /metrics needs no key by default (as blackbox_exporter and Gatus); false makes it
    # need a read key, which Prometheus sends as `Authorization: Bearer <key>`.
    metrics_public: bool = True
    # Alerting: a YAML file merged over the packaged defaults, and the optional
    # OpenAI-compatible endpoint for incident reports.
    alerts_file: Path | None = None
    # Maintenance windows planned in YAML (read-only through the API; docs/maintenance.md).
    maintenance_file: Path | None = None
    llm_url: str | None = None
    llm_key: SecretStr | None = None
    llm_model: str | None = None
    # Several processes: what this one does, and how it shares the work through
    # Redis. `all` probes, serves and may lead; `api` serves and may lead but probes
    # nothing; `worker` probes and may lead, and serves only /healthz.
    role: Literal["all", "api", "worker"] = "all"
    worker_id: str | None = None
    # Processes sharing one Redis and one database form a cluster; by default its name is
    # derived from the database URL, so unrelated deployments on one Redis never mix.
    cluster_name: str | None = None
    # Where this worker probes from (`eu`, `us-east`): each location probes every provider
    # (or those whose catalogue entry lists it) and a provider is offline only when
    # `location_quorum` locations agree (0: a majority of them). Empty: no locations.
    location: str = Field(default="", max_length=64, pattern=r"^[A-Za-z0-9._-]*$")
    location_quorum: int = Field(default=0, ge=0)
    heartbeat_s: float = Field(default=5.0, gt=0)
    leader_lease_s: float = Field(default=15.0, gt=0)
    # Unexpected exceptions to Sentry (opt-in); every known secret is scrubbed first.
    sentry_dsn: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SENTRY_DSN", "APIWATCH_SENTRY_DSN")
    )
    sentry_environment: str | None = None
    # The public status page and badges: its title, and which providers it and
    # the badges show (empty: every enabled provider).
    status_page_title: str = Field(default="API status", min_length=1, max_length=120)
    status_page_providers: list[str] = Field(default_factory=list)

    # Under faults: short Redis timeouts, so a hung Redis costs milliseconds; the
    # share of each budget window one process may spend while Redis is unreachable; where
    # the recorder spills rows the database cannot take; the limits on request heads and
    # connections; the proxies whose X-Forwarded-For is believed (none by default).
    redis_timeout_ms: int = Field(default=250, ge=10, le=30_000)
    budget_local_share: float = Field(default=0.25, gt=0, le=1)
    spill_dir: Path = Path("data/spill")
    recorder_max_queue: int = Field(default=20_000, ge=100)
    max_request_head_bytes: int = Field(default=16 * 1024, ge=1024)
    request_head_timeout_s: float = Field(default=10.0, gt=0)
    max_connections: int = Field(default=1000, ge=1)
    # Comma-separated addresses or networks, e.g. "10.0.0.5,192.168.1.0/24".
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies_from_text(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("tls_ca_file")
    @classmethod
    def _ca_file_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @field_validator("upstream_override")
    @classmethod
    def _override_is_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("does not look like http://HOST:PORT")
        return value.rstrip("/")

    def cluster_prefix(self) -> str:
        """The Redis key prefix of this deployment's cluster state."""
        name = self.cluster_name or hashlib.sha256(self.database_url.encode()).hexdigest()[:12]
        return f"{self.redis_prefix}cluster:{name}:"

    def secrets(self, names: Iterable[str]) -> dict[str, str]:
        """Values of the named provider-key variables (plain names, e.g. ETHERSCAN_KEY_1).

        The process environment wins over `.env`; empty values count as unset.
        """
        env_file = self.model_config.get("env_file")
        from_file = dotenv_values(env_file) if env_file and Path(str(env_file)).is_file() else {}
        found: dict[str, str] = {}
        for name in names:
            value = os.environ.get(name) or from_file.get(name)
            if value:
                found[name] = value
        return found


def env_name(field: str) -> str:
    """The environment variable a Settings field is read from (its first alias, if any)."""
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info is not None else None
    if isinstance(alias, AliasChoices) and alias.choices:
        return str(alias.choices[0])
    if isinstance(alias, str):
        return alias
    return f"APIWATCH_{field.upper()}"


def _field_of(loc: tuple[object, ...]) -> str:
    first = str(loc[0]) if loc else ""
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias
        choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
        if first == name or first in [str(c) for c in choices]:
            return name
    return first


_WHY = {
    "int_parsing": "is not a whole number",
    "float_parsing": "is not a number",
    "bool_parsing": "is not true or false (true/false, 1/0, yes/no, on/off)",
    "dict_type": "is not a JSON object",
    "list_type": "is not a JSON list",
    "string_type": "is not text",
}


def describe_setting_errors(exc: ValidationError) -> list[str]:
    """One line per bad setting, naming the variable and the value as given:
    `APIWATCH_PORT='abc' is not a port number (1..65535)`. Secrets are masked."""
    lines = []
    for error in exc.errors():
        field = _field_of(tuple(error.get("loc", ())))
        info = Settings.model_fields.get(field)
        secret = info is not None and "SecretStr" in str(info.annotation)
        value = error.get("input")
        shown = "'***'" if secret else repr(value)
        kind = str(error.get("type", ""))
        if field in ("port", "sim_port") and kind in (
            "int_parsing",
            "greater_than_equal",
            "less_than_equal",
        ):
            why = "is not a port number (1..65535)"
        elif kind in _WHY:
            why = _WHY[kind]
        else:
            msg = str(error.get("msg", "is not valid"))
            msg = msg.removeprefix("Value error, ")
            why = msg[0].lower() + msg[1:] if msg.startswith("Input should") else msg
            why = why.replace("input should", "should")
        lines.append(f"{env_name(field)}={shown} {why}")
    return lines


def describe_settings_error(exc: SettingsError) -> str:
    """pydantic-settings' own error (a dict or list setting that is not JSON) as one line."""
    match = re.search(r'field "(\w+)"', str(exc))
    if match is None:
        return f"invalid settings: {exc}"
    name = env_name(match.group(1))
    value = os.environ.get(name)
    shown = "" if value is None else f"={value!r}"
    return f"{name}{shown} is not valid JSON (this setting takes a JSON object or list)"
