"""Alerting settings: rule thresholds, dedup and grouping windows, routes, channels, LLM.

`defaults.yaml` (packaged next to this module) holds every default; a user's YAML file is
merged over it, then a patch (what `PUT /api/alerts/settings` sends, or the stored override).
Mappings merge key by key, lists are replaced whole, and `null` for a channel name removes
that channel. Errors name the field, and for files the file and line, like the catalogue's;
they never echo a value that could be a secret.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from apiwatch.catalogue.loader import is_type_tag, node_line
from apiwatch.domain import Severity

DEFAULTS_PATH = Path(__file__).with_name("defaults.yaml")
PATCH_SOURCE = "settings patch"
_SECRETISH = re.compile(r"(?i)pass|secret|token|key|url|webhook|auth|dsn")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResponseTimeRule(_Strict):
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


class ErrorRateRule(_Strict):
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


class AnomalyRule(_Strict):
    enabled: bool = True
    z_threshold: float = Field(default=2.5, gt=0)
    critical_z: float | None = Field(default=None, gt=0)
    window: int = Field(default=50, ge=2)
    min_samples: int = Field(default=20, ge=2)
    clear_after: int = Field(default=3, ge=1)
    direction: Literal["both", "slower"] = "both"
    min_stddev_ms: float = Field(default=1.0, ge=0)
    min_stddev_ratio: float = Field(default=0.05, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> AnomalyRule:
        if self.min_samples > self.window:
            raise ValueError("min_samples cannot exceed window")
        if self.critical_z is not None and self.critical_z < self.z_threshold:
            raise ValueError("critical_z must be at least z_threshold")
        return self


class StatusRule(_Strict):
    enabled: bool = True
    degraded: Severity = Severity.WARNING
    offline: Severity = Severity.CRITICAL


class EventRule(_Strict):
    enabled: bool = True
    severity: Severity = Severity.WARNING
    auto_resolve_s: float | None = Field(default=None, gt=0, le=30 * 86400)


class UsageSpikeRule(_Strict):
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


class UnauthorizedRule(_Strict):
    enabled: bool = True
    warning_per_hour: int = Field(default=5, ge=0)
    critical_per_hour: int | None = Field(default=50, ge=0)
    window_s: float = Field(default=3600.0, gt=0, le=30 * 86400)

    @model_validator(mode="after")
    def _ordered(self) -> UnauthorizedRule:
        if self.critical_per_hour is not None and self.critical_per_hour < self.warning_per_hour:
            raise ValueError("critical_per_hour must be at least warning_per_hour")
        return self


class RuleSettings(_Strict):
    response_time: ResponseTimeRule = ResponseTimeRule()
    error_rate: ErrorRateRule = ErrorRateRule()
    latency_anomaly: AnomalyRule = AnomalyRule()
    provider_status: StatusRule = StatusRule()
    rate_limit_warning: EventRule = EventRule(severity=Severity.WARNING)
    rate_limit_blocked: EventRule = EventRule(severity=Severity.CRITICAL)
    key_expired: EventRule = EventRule(severity=Severity.CRITICAL)
    breaker_open: EventRule = EventRule(severity=Severity.CRITICAL)
    data_stale: EventRule = EventRule(severity=Severity.WARNING, auto_resolve_s=3600)
    data_divergent: EventRule = EventRule(severity=Severity.WARNING, auto_resolve_s=1800)
    inbound_usage_spike: UsageSpikeRule = UsageSpikeRule()
    inbound_unauthorized: UnauthorizedRule = UnauthorizedRule()


class RouteMatch(_Strict):
    """Empty lists match anything; values within one list are alternatives."""

    severity: list[Severity] = Field(default_factory=list)
    category: list[str] = Field(default_factory=list)
    provider: list[str] = Field(default_factory=list)


class Route(_Strict):
    match: RouteMatch = RouteMatch()
    channels: list[str] = Field(min_length=1)


DEFAULT_ROUTES = (
    Route(match=RouteMatch(severity=[Severity.WARNING]), channels=["slack"]),
    Route(match=RouteMatch(severity=[Severity.CRITICAL]), channels=["pagerduty"]),
)


class ChannelSettings(BaseModel):
    """One channel: its kind, and whatever options that kind reads (the channel validates)."""

    model_config = ConfigDict(extra="allow")

    kind: Literal["webhook", "slack", "pagerduty", "email", "apprise"]
    enabled: bool = True

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class LlmSettings(_Strict):
    url: str | None = None
    model: str | None = None
    timeout_s: float = Field(default=10.0, gt=0, le=120)

    @model_validator(mode="before")
    @classmethod
    def _no_key_here(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(k in data for k in ("key", "api_key", "token")):
            raise ValueError("the LLM key is never read from settings files; set APIWATCH_LLM_KEY")
        return data

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @property
    def enabled(self) -> bool:
        return bool(self.url and self.model)


class AlertSettings(_Strict):
    rules: RuleSettings = RuleSettings()
    # Bounded: a window of 1e308 s would overflow every datetime it is added to and stop
    # all notifications (a day for grouping and thirty for repeats are already extreme).
    dedup_window_s: float = Field(default=300.0, ge=0, le=30 * 86400)
    repeat_interval_s: float | None = Field(default=3600.0, gt=0, le=30 * 86400)
    group_window_s: float = Field(default=5.0, ge=0, le=86400)
    group_interval_s: float = Field(default=60.0, ge=0, le=86400)
    max_batch: int = Field(default=50, ge=1, le=1000)
    routes: list[Route] = Field(default_factory=lambda: list(DEFAULT_ROUTES))
    channels: dict[str, ChannelSettings] = Field(default_factory=dict)
    llm: LlmSettings = LlmSettings()

    @model_validator(mode="after")
    def _windows(self) -> AlertSettings:
        if self.repeat_interval_s is not None and self.repeat_interval_s < self.dedup_window_s:
            raise ValueError("repeat_interval_s must be at least dedup_window_s")
        return self

    def route(
        self, *, severity: Severity | str, category: str | None, provider: str | None
    ) -> list[str]:
        """Names of the channels every matching route sends to, in route order, once each."""
        names: list[str] = []
        for route in self.routes:
            if _route_matches(route.match, Severity(severity), category, provider):
                names.extend(n for n in route.channels if n not in names)
        return names

    def undefined_channels(self) -> list[str]:
        """Channel names used by routes but not defined (worth a warning at start-up)."""
        used = [name for route in self.routes for name in route.channels]
        return sorted({name for name in used if name not in self.channels})

    def merged(self, patch: Mapping[str, Any]) -> AlertSettings:
        """These settings with `patch` merged over them; raises `AlertConfigError`."""
        return apply_patch(self, patch)

    def channel_configs(self) -> dict[str, dict[str, Any]]:
        """Enabled channels as plain dicts (`kind` plus the channel's options)."""
        return {
            name: {"kind": channel.kind, **channel.options}
            for name, channel in self.channels.items()
            if channel.enabled
        }

    def public_view(self) -> dict[str, Any]:
        """The settings as JSON for the API, with channel options that may hold secrets
        (URLs with tokens, passwords, routing keys) masked."""
        data = self.model_dump(mode="json")
        for options in data["channels"].values():
            for name, value in options.items():
                if name not in ("kind", "enabled") and _SECRETISH.search(name) and value:
                    options[name] = "***"
        return data


def _route_matches(
    match: RouteMatch, severity: Severity, category: str | None, provider: str | None
) -> bool:
    if match.severity and severity not in match.severity:
        return False
    if match.category and category not in match.category:
        return False
    return not (match.provider and provider not in match.provider)


# -- loading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigProblem:
    source: str  # a file path, or PATCH_SOURCE
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: {self.field}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "line": self.line, "field": self.field, "msg": self.message}


class AlertConfigError(ValueError):
    """Alert settings are invalid; `problems` says where and why."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("invalid alert settings:\n" + "\n".join(f"  {p}" for p in problems))


@dataclass
class _Layer:
    source: str
    data: dict[str, Any]
    node: yaml.Node | None = None


def load_alert_settings(
    *,
    user_path: Path | None = None,
    patch: Mapping[str, Any] | None = None,
    defaults_path: Path = DEFAULTS_PATH,
) -> AlertSettings:
    """Defaults, then the user's file, then the patch; raises `AlertConfigError`."""
    layers = [_read_yaml(defaults_path)]
    if user_path is not None:
        layers.append(_read_yaml(user_path))
    if patch:
        layers.append(_Layer(PATCH_SOURCE, _as_mapping(patch, PATCH_SOURCE)))
    return _validate(layers)


def apply_patch(settings: AlertSettings, patch: Mapping[str, Any]) -> AlertSettings:
    """`settings` with `patch` merged over it (for `PUT /api/alerts/settings`)."""
    base = _Layer("current settings", settings.model_dump(mode="json"))
    return _validate([base, _Layer(PATCH_SOURCE, _as_mapping(patch, PATCH_SOURCE))])


def merge(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge: mappings key by key, anything else replaced; null removes a channel."""
    return _merge(base, patch, ())


def _merge(base: Mapping[str, Any], patch: Mapping[str, Any], path: tuple[str, ...]) -> dict:
    merged = copy.deepcopy(dict(base))
    for key, value in patch.items():
        if path == ("channels",) and value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value, (*path, str(key)))
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _as_mapping(data: Any, source: str) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise AlertConfigError([ConfigProblem(source, None, "(settings)", "expected a mapping")])
    return dict(data)


def _read_yaml(path: Path) -> _Layer:
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise AlertConfigError([ConfigProblem(source, None, "(file)", reason)]) from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise AlertConfigError([ConfigProblem(source, line, "(file)", "not UTF-8 text")]) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or "cannot be parsed"
        raise AlertConfigError(
            [ConfigProblem(source, line, "(yaml)", f"not valid YAML: {problem}")]
        ) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise AlertConfigError(
            [ConfigProblem(source, 1, "(file)", "expected a mapping of alert settings at the top")]
        )
    return _Layer(source, data, node)


def _validate(layers: Sequence[_Layer]) -> AlertSettings:
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = merge(merged, layer.data)
    try:
        return AlertSettings.model_validate(merged)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = [part for part in error["loc"] if not is_type_tag(part)]
            field = ".".join(str(part) for part in loc) or "(settings)"
            source, line = _locate(layers, loc)
            problems.append(ConfigProblem(source, line, field, _describe(error, field)))
        # `from None`: pydantic's own message echoes input values, which may be secrets.
        raise AlertConfigError(problems) from None


def _locate(layers: Sequence[_Layer], loc: Sequence[str | int]) -> tuple[str, int | None]:
    """The layer that set the deepest part of `loc` (later layers win ties), and its line."""
    best: tuple[int, _Layer] | None = None
    for layer in layers:
        depth = _depth(layer.data, loc)
        if depth and (best is None or depth >= best[0]):
            best = (depth, layer)
    layer = best[1] if best else layers[-1]
    return layer.source, node_line(layer.node, loc)


def _depth(data: Any, loc: Sequence[str | int]) -> int:
    depth = 0
    for part in loc:
        if isinstance(data, Mapping) and str(part) in data:
            data = data[str(part)]
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            break
        depth += 1
    return depth


def _describe(error: Mapping[str, Any], field: str) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return "unknown field (check the spelling against alerting/defaults.yaml)"
    if error["type"] == "missing":
        return "required field is missing"
    given = error.get("input")
    scalar = isinstance(given, str | int | float | bool)
    private = field.startswith(("channels", "llm"))
    if scalar and error["type"] != "value_error" and not private:
        return f"{message} (got {given!r})"
    return message
