"""The thresholds and switches of each alert rule, as validated settings (the `rules:`
section of the alert settings)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from apiwatch.domain import Severity


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResponseTimeRule(Strict):
    enabled: bool = True
    warning_s: float = Field(default=1.0, gt=0, le=3600)
    critical_s: float = Field(default=2.0, gt=0, le=3600)
    window_results: int = Field(default=5, ge=1)
    window_s: float = Field(default=300.0, gt=0, le=30 * 86400)
    min_samples: int = Field(default=3, ge=1)
    clear_ratio: float = Field(default=0.9, gt=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> ResponseTimeRule:
        if self.critical_s < self.warning_s:
            raise ValueError("critical_s must be at least warning_s")
        return self


class ErrorRateRule(Strict):
    enabled: bool = True
    warning_pct: float = Field(default=5.0, ge=0, le=100)
    critical_pct: float = Field(default=10.0, ge=0, le=100)
    window_results: int = Field(default=20, ge=1)
    min_samples: int = Field(default=10, ge=1)
    max_age_s: float = Field(default=3600.0, gt=0, le=30 * 86400)
    clear_ratio: float = Field(default=0.9, gt=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> ErrorRateRule:
        if self.critical_pct < self.warning_pct:
            raise ValueError("critical_pct must be at least warning_pct")
        return self


class AnomalyRule(Strict):
    enabled: bool = True
    z_threshold: float = Field(default=2.5, gt=0)
    critical_z: float | None = Field(default=None, gt=0)
    window: int = Field(default=50, ge=2)
    min_samples: int = Field(default=20, ge=2)
    clear_after: int = Field(default=3, ge=1)
    direction: Literal["both", "slower"] = "both"
    min_stddev_ms: float = Field(default=10.0, ge=0)
    min_stddev_ratio: float = Field(default=0.05, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> AnomalyRule:
        if self.min_samples > self.window:
            raise ValueError("min_samples cannot exceed window")
        if self.critical_z is not None and self.critical_z < self.z_threshold:
            raise ValueError("critical_z must be at least z_threshold")
        return self


class StatusRule(Strict):
    enabled: bool = True
    degraded: Severity = Severity.WARNING
    offline: Severity = Severity.CRITICAL


class EventRule(Strict):
    enabled: bool = True
    severity: Severity = Severity.WARNING
    auto_resolve_s: float | None = Field(default=None, gt=0, le=30 * 86400)


class UsageSpikeRule(Strict):
    enabled: bool = True
    warning_ratio: float = Field(default=2.0, gt=1)
    critical_ratio: float = Field(default=3.0, gt=1)
    baseline_minutes: int = Field(default=60, ge=2)
    min_history_minutes: int = Field(default=10, ge=1)
    min_requests_per_minute: int = Field(default=10, ge=1)
    min_normal_per_minute: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> UsageSpikeRule:
        if self.critical_ratio < self.warning_ratio:
            raise ValueError("critical_ratio must be at least warning_ratio")
        if self.min_history_minutes > self.baseline_minutes:
            raise ValueError("min_history_minutes cannot exceed baseline_minutes")
        return self


class UnauthorizedRule(Strict):
    enabled: bool = True
    warning_per_hour: int = Field(default=5, ge=0)
    critical_per_hour: int | None = Field(default=50, ge=0)
    window_s: float = Field(default=3600.0, gt=0, le=30 * 86400)

    @model_validator(mode="after")
    def _ordered(self) -> UnauthorizedRule:
        if self.critical_per_hour is not None and self.critical_per_hour < self.warning_per_hour:
            raise ValueError("critical_per_hour must be at least warning_per_hour")
        return self


class BurnConditionSetting(Strict):
    """Fire when the burn rate over both `long_s` and `short_s` is at least `factor`."""

    name: str = Field(min_length=1, max_length=64)
    long_s: float = Field(gt=0, le=90 * 86400)
    short_s: float = Field(gt=0, le=90 * 86400)
    factor: float = Field(gt=0)
    severity: Severity

    @model_validator(mode="after")
    def _short_within_long(self) -> BurnConditionSetting:
        if self.short_s > self.long_s:
            raise ValueError("short_s must not exceed long_s")
        return self


def _workbook_conditions() -> list[BurnConditionSetting]:
    # The SRE workbook's alerts for a 30-day budget: 2 % of it in an hour, 5 % in six
    # hours (pages), 10 % in three days (a ticket).
    return [
        BurnConditionSetting(
            name="page_fast", long_s=3600, short_s=300, factor=14.4, severity=Severity.CRITICAL
        ),
        BurnConditionSetting(
            name="page_slow", long_s=21600, short_s=1800, factor=6.0, severity=Severity.CRITICAL
        ),
        BurnConditionSetting(
            name="ticket", long_s=259200, short_s=21600, factor=1.0, severity=Severity.WARNING
        ),
    ]


class SloBurnRule(Strict):
    enabled: bool = True
    conditions: list[BurnConditionSetting] = Field(default_factory=_workbook_conditions)

    @model_validator(mode="after")
    def _unique_names(self) -> SloBurnRule:
        names = [c.name for c in self.conditions]
        if len(names) != len(set(names)):
            raise ValueError("conditions need distinct names")
        return self


class CertificateRule(Strict):
    """Days left before the earliest expiry in a host's certificate chain: warning at
    `warning_days`, critical at `critical_days`; `invalid` for a certificate that does not
    verify or does not cover the host name."""

    enabled: bool = True
    warning_days: float = Field(default=21.0, gt=0, le=366)
    critical_days: float = Field(default=7.0, ge=0, le=366)
    invalid: Severity = Severity.CRITICAL

    @model_validator(mode="after")
    def _ordered(self) -> CertificateRule:
        if self.critical_days > self.warning_days:
            raise ValueError("critical_days must not exceed warning_days")
        return self

    def level(self, *, verified: bool, days_left: float | None) -> str:
        """ "invalid", "critical", "warning", "ok", or "unknown" (no expiry was read)."""
        if not verified:
            return "invalid"
        if days_left is None:
            return "unknown"
        if days_left <= self.critical_days:
            return "critical"
        return "warning" if days_left <= self.warning_days else "ok"


class RuleSettings(Strict):
    response_time: ResponseTimeRule = ResponseTimeRule()
    error_rate: ErrorRateRule = ErrorRateRule()
    latency_anomaly: AnomalyRule = AnomalyRule()
    provider_status: StatusRule = StatusRule()
    rate_limit_warning: EventRule = EventRule(severity=Severity.WARNING)
    rate_limit_blocked: EventRule = EventRule(severity=Severity.CRITICAL)
    key_expired: EventRule = EventRule(severity=Severity.CRITICAL)
    breaker_open: EventRule = EventRule(severity=Severity.CRITICAL)
    apiwatch_dependency_down: EventRule = EventRule(severity=Severity.CRITICAL)
    data_stale: EventRule = EventRule(severity=Severity.WARNING, auto_resolve_s=3600)
    data_divergent: EventRule = EventRule(severity=Severity.WARNING, auto_resolve_s=1800)
    book_integrity: EventRule = EventRule(severity=Severity.CRITICAL, auto_resolve_s=1800)
    inbound_usage_spike: UsageSpikeRule = UsageSpikeRule()
    inbound_unauthorized: UnauthorizedRule = UnauthorizedRule()
    slo_burn: SloBurnRule = SloBurnRule()
    tls_certificate: CertificateRule = CertificateRule()
