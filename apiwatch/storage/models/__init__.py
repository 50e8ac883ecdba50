"""The schema: one declarative `Base` and a typed model per table (docs/operations.md), in
one module per subject.

Table names are the seed's and are part of the contract with dashboards and SQL users;
`migrations/versions/` must create exactly this (a test compares the two).
"""

from __future__ import annotations

from apiwatch.storage.models.access import ApiKey, ApiRefusal, ApiUsage
from apiwatch.storage.models.alerting import (
    Alert,
    AlertDelivery,
    MaintenanceWindowRow,
    SettingRow,
    Silence,
)
from apiwatch.storage.models.base import Base
from apiwatch.storage.models.monitoring import (
    ConnectionAttempt,
    DataCollection,
    FailureLog,
    Provider,
    RateLimitUsage,
    ScheduleCompliance,
    ScheduleConfig,
    StatusChangeRow,
)
from apiwatch.storage.models.system import (
    CircuitBreakerRow,
    EventRow,
    HourlyRollup,
    ProviderChange,
    ProviderSpecRow,
    SystemMetric,
    TlsCertificate,
)

TABLES = Base.metadata.tables

__all__ = [
    "TABLES",
    "Alert",
    "AlertDelivery",
    "ApiKey",
    "ApiRefusal",
    "ApiUsage",
    "Base",
    "CircuitBreakerRow",
    "ConnectionAttempt",
    "DataCollection",
    "EventRow",
    "FailureLog",
    "HourlyRollup",
    "MaintenanceWindowRow",
    "Provider",
    "ProviderChange",
    "ProviderSpecRow",
    "RateLimitUsage",
    "ScheduleCompliance",
    "ScheduleConfig",
    "SettingRow",
    "Silence",
    "StatusChangeRow",
    "SystemMetric",
    "TlsCertificate",
]
