"""Alerting settings: rule thresholds, dedup and grouping windows, routes, channels, LLM.

`defaults.yaml` (packaged next to this module) holds every default; a user's YAML file is
merged over it, then a patch (what `PUT /api/alerts/settings` sends, or the stored override).
Mappings merge key by key, lists are replaced whole, and `null` for a channel name removes
that channel. Errors name the field, and for files the file and line, like the catalogue's;
they never echo a value that could be a secret.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from apiwatch.alerting.channels import build_channel
from apiwatch.alerting.rule_settings import RuleSettings, Strict
from apiwatch.catalogue.loader import is_type_tag, node_line
from apiwatch.domain import Severity

DEFAULTS_PATH = Path(__file__).with_name("defaults.yaml")
PATCH_SOURCE = "settings patch"
CURRENT_SOURCE = "current settings"
_SECRETISH = re.compile(r"(?i)pass|secret|token|key|url|webhook|auth|dsn")


class RouteMatch(Strict):
    """Empty lists match anything; values within one list are alternatives."""

    severity: list[Severity] = Field(default_factory=list)
    category: list[str] = Field(default_factory=list)
    provider: list[str] = Field(default_factory=list)


class Route(Strict):
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


class LlmSettings(Strict):
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


class AlertSettings(Strict):
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
    packaged: bool = False  # the defaults: their routes name channels a user may not define


def load_alert_settings(
    *,
    user_path: Path | None = None,
    patch: Mapping[str, Any] | None = None,
    defaults_path: Path = DEFAULTS_PATH,
) -> AlertSettings:
    """Defaults, then the user's file, then the patch; raises `AlertConfigError`."""
    layers = [_read_yaml(defaults_path, packaged=True)]
    if user_path is not None:
        layers.append(_read_yaml(user_path))
    if patch:
        layers.append(_Layer(PATCH_SOURCE, _as_mapping(patch, PATCH_SOURCE)))
    return _validate(layers)


def apply_patch(settings: AlertSettings, patch: Mapping[str, Any]) -> AlertSettings:
    """`settings` with `patch` merged over it (for `PUT /api/alerts/settings`)."""
    base = _Layer(CURRENT_SOURCE, settings.model_dump(mode="json"))
    return _validate([base, _Layer(PATCH_SOURCE, _as_mapping(patch, PATCH_SOURCE))], strict=True)


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


def read_yaml_file(
    path: Path, error: type[AlertConfigError] = AlertConfigError
) -> tuple[yaml.Node | None, Any]:
    """The composed node (for line numbers) and the data of a YAML settings file; an
    unreadable file, bad UTF-8 or bad YAML raises `error` naming the file and line."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise error([ConfigProblem(source, None, "(file)", reason)]) from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise error([ConfigProblem(source, line, "(file)", "not UTF-8 text")]) from None
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader), yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or "cannot be parsed"
        raise error([ConfigProblem(source, line, "(yaml)", f"not valid YAML: {problem}")]) from None


def _read_yaml(path: Path, *, packaged: bool = False) -> _Layer:
    source = str(path)
    node, data = read_yaml_file(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise AlertConfigError(
            [ConfigProblem(source, 1, "(file)", "expected a mapping of alert settings at the top")]
        )
    return _Layer(source, data, node, packaged)


def _validate(layers: Sequence[_Layer], *, strict: bool = False) -> AlertSettings:
    """`strict`: a patch arrives as JSON and is read as JSON Schema reads it, so `0` is not
    taken for false nor `"5"` for 5 (files keep YAML's looser reading)."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = merge(merged, layer.data)
    try:
        if strict:
            settings = AlertSettings.model_validate_json(json.dumps(merged), strict=True)
        else:
            settings = AlertSettings.model_validate(merged)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = [part for part in error["loc"] if not is_type_tag(part)]
            field = ".".join(str(part) for part in loc) or "(settings)"
            source, line = _locate(layers, loc)
            problems.append(ConfigProblem(source, line, field, _describe(error, field)))
        # `from None`: pydantic's own message echoes input values, which may be secrets.
        raise AlertConfigError(problems) from None
    problems = [*_undefined_route_channels(settings, layers), *_channel_problems(settings, layers)]
    if problems:
        raise AlertConfigError(problems)
    return settings


def _undefined_route_channels(
    settings: AlertSettings, layers: Sequence[_Layer]
) -> list[ConfigProblem]:
    """Routes a user wrote that name a channel nobody defined: a typo would otherwise send
    nothing, silently. The packaged routes (to `slack` and `pagerduty`) are placeholders
    and only warned about at start-up."""
    source = next((layer for layer in reversed(layers) if "routes" in layer.data), None)
    if source is None or source.packaged or source.source == CURRENT_SOURCE:
        return []
    defined = ", ".join(sorted(settings.channels)) or "none"
    return [
        ConfigProblem(
            source.source,
            node_line(source.node, ["routes", i, "channels", j]),
            f"routes.{i}.channels.{j}",
            f"channel {name!r} is not defined under channels (defined: {defined})",
        )
        for i, route in enumerate(settings.routes)
        for j, name in enumerate(route.channels)
        if name not in settings.channels
    ]


def _channel_problems(settings: AlertSettings, layers: Sequence[_Layer]) -> list[ConfigProblem]:
    """Each enabled channel built once, so a missing or malformed URL, key or password is
    reported with the file and line of the channel, never with its value."""
    problems = []
    for name, config in settings.channel_configs().items():
        try:
            build_channel(config["kind"], name, config)
        except ValueError as exc:
            message = str(exc).split("): ", 1)[-1]
            field = message.split(":", 1)[0].split(".", 1)[0]
            layer = next(
                (lay for lay in reversed(layers) if name in (lay.data.get("channels") or {})),
                layers[-1],
            )
            options = (layer.data.get("channels") or {}).get(name) or {}
            loc: list[str | int] = (
                ["channels", name, field] if field in options else ["channels", name]
            )
            problems.append(
                ConfigProblem(layer.source, node_line(layer.node, loc), f"channels.{name}", message)
            )
    return problems


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
