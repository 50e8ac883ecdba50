"""Settings: the only module that reads the environment (and `.env`).

Everything has a default that works on a laptop with no services. The faces (`api/app.py`,
`cli.py`) build one `Settings` and pass what is needed down as arguments.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from dotenv import dotenv_values
from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "APIWATCH_REDIS_URL")
    )
    upstream_override: str | None = None
    catalogue_dir: Path | None = None
    health_interval_s: float = Field(default=300.0, gt=0)
    probe_concurrency: int = Field(default=50, ge=1)
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    status_window: int = Field(default=20, ge=1)
    recorder_batch_size: int = Field(default=500, ge=1)
    recorder_flush_ms: int = Field(default=100, ge=1)
    log_level: str = "INFO"
    log_json: bool = True
    scheduler_enabled: bool = True
    breaker_failure_threshold: int = Field(default=5, ge=1)
    breaker_cooldown_s: float = Field(default=30.0, gt=0)
    budget_warn_at: float = Field(default=0.8, gt=0, le=1)
    budget_snapshot_interval_s: float = Field(default=60.0, gt=0)
    # Data collection (issue 4).
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
    # apiwatch's own API (issue 6).
    public_read: bool = False
    # Registered as an admin key at start when set; otherwise the first start with no keys
    # creates one and prints it once.
    admin_key: SecretStr | None = None
    api_limit_per_minute: int = Field(default=100, ge=1)
    api_limit_per_hour: int = Field(default=1000, ge=1)
    api_limit_per_day: int = Field(default=10000, ge=1)
    failed_auth_per_minute: int = Field(default=30, ge=1)
    api_key_sync_s: float = Field(default=10.0, gt=0)
    # Alerting (issue 5): a YAML file merged over the packaged defaults, and the optional
    # OpenAI-compatible endpoint for incident reports.
    alerts_file: Path | None = None
    llm_url: str | None = None
    llm_key: SecretStr | None = None
    llm_model: str | None = None

    @field_validator("upstream_override")
    @classmethod
    def _override_is_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("APIWATCH_UPSTREAM_OVERRIDE must look like http://HOST:PORT")
        return value.rstrip("/")

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
