"""The provider catalogue's schema: what one YAML file may say about one provider.

Every field is validated here so a mistake in a user's file stops start-up with a precise
message instead of surfacing later as a strange probe result.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated, Any, Literal

from jsonpath_ng.ext import parse as parse_jsonpath
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from apiwatch.domain import Category

PROVIDER_ID = r"^[a-z][a-z0-9_]*$"
_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


# jsonpath-ng builds its parser on every parse; catalogues repeat the same few paths, so
# a thousand provider files compile each path once.
_compile_jsonpath = lru_cache(maxsize=1024)(parse_jsonpath)


# Equal sub-models are shared between providers: a catalogue of thousands repeats the same
# few (no auth, the default limits, book checks and objectives, one health check shape),
# and each copy is a few kilobytes of pydantic objects. The models are frozen, so sharing
# is safe; the key holds the values and which fields were set (checks read `fields_set`).
# Bounded: past it, new values are kept by their provider alone.
_SHARED: dict[tuple[type, str, str], BaseModel] = {}
_SHARED_MAX = 10_000


def _shared(model: Any) -> Any:
    if model is None:
        return None
    try:
        key = (type(model), model.model_dump_json(), model.model_dump_json(exclude_unset=True))
    except ValueError:  # a value JSON cannot spell (YAML allows a few): kept unshared
        return model
    found = _SHARED.get(key)
    if found is not None:
        return found
    if len(_SHARED) < _SHARED_MAX:
        _SHARED[key] = model
    return model


def _valid_jsonpath(path: str) -> str:
    """Compile it now, so a bad path fails at load (file and line), not at probe time."""
    if not path.startswith("$"):
        raise ValueError(f"json path must start with '$', got {path!r}")
    try:
        _compile_jsonpath(path)
    except Exception as exc:  # jsonpath-ng raises several unrelated types for bad input
        raise ValueError(f"not a valid JSONPath {path!r}: {exc}") from exc
    return path


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Check(_Strict):
    """One assertion about a response. Exactly one subject: status, json, body or latency.

    `json` is a JSONPath (`$.status`, `$.data[0].timestamp`); with no operator it asserts the
    path exists.
    """

    status: int | list[int] | None = None
    json_path: str | None = Field(default=None, alias="json")
    body: Literal["json", "any"] | None = None
    max_latency_ms: float | None = Field(default=None, gt=0)
    equals: Any = None
    not_equals: Any = None
    matches: str | None = None
    type: Literal["string", "number", "integer", "boolean", "object", "array", "null"] | None = None
    exists: bool | None = None
    min_items: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one_subject(self) -> Check:
        subjects = [
            name
            for name, value in (
                ("status", self.status),
                ("json", self.json_path),
                ("body", self.body),
                ("max_latency_ms", self.max_latency_ms),
            )
            if value is not None
        ]
        if len(subjects) != 1:
            raise ValueError(
                "a check needs exactly one of status, json, body, max_latency_ms; "
                f"got {subjects or 'none'}"
            )
        if self.json_path is not None:
            _valid_jsonpath(self.json_path)
        if self.matches is not None:
            try:
                re.compile(self.matches)
            except re.error as exc:
                raise ValueError(f"matches is not a valid regular expression: {exc}") from exc
        return self


class Signal(_Strict):
    """A provider's own way of saying something in a body, whatever the HTTP status.

    Matches when the JSON path's value equals/matches, or (with `body_matches`) when the raw
    body text matches a regular expression (for HTML and plain-text error pages).
    """

    json_path: str | None = Field(default=None, alias="json")
    equals: Any = None
    matches: str | None = None
    body_matches: str | None = None
    status: int | list[int] | None = None  # only on these HTTP statuses, when set
    # The provider stops serving us for at least this long when it says this (Bybit's IP
    # ban: 10 minutes), whether or not it sends Retry-After.
    block_s: float | None = Field(default=None, gt=0, le=366 * 86400)

    @model_validator(mode="after")
    def _subject(self) -> Signal:
        if (self.json_path is None) == (self.body_matches is None):
            raise ValueError("a signal needs exactly one of json, body_matches")
        if self.json_path is not None:
            _valid_jsonpath(self.json_path)
            if "equals" not in self.model_fields_set and self.matches is None:
                raise ValueError("a json signal needs equals or matches")
        for pattern in (self.matches, self.body_matches):
            if pattern is not None:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(f"not a valid regular expression: {exc}") from exc
        return self


class TimestampSpec(_Strict):
    """Where an endpoint's data carries its own time, and in which unit."""

    json_path: str = Field(alias="json")
    unit: Literal["s", "ms", "iso8601"]
    pick: Literal["first", "max"] = "max"

    @field_validator("json_path")
    @classmethod
    def _path(cls, value: str) -> str:
        return _valid_jsonpath(value)


class ObjectiveSpec(_Strict):
    """A service-level objective (`objectives:` of a provider or an endpoint).

    Percentages as written in contracts (`target: 99.5`, `sla: 99.9`). Every field left out
    falls back: an endpoint's to its provider's, a provider's to the defaults below.
    """

    target: float | None = Field(default=None, gt=0, lt=100)
    window_days: int | None = Field(default=None, ge=1, le=90)
    latency_p95_ms: float | None = Field(default=None, gt=0)
    sla: float | None = Field(default=None, gt=0, lt=100)
    exclude_maintenance: bool | None = None

    def over(self, base: ResolvedObjective) -> ResolvedObjective:
        """This spec's fields over `base`'s."""
        values = {
            name: getattr(self, name)
            for name in ResolvedObjective.model_fields
            if getattr(self, name) is not None
        }
        return base.model_copy(update=values)


class ResolvedObjective(_Strict):
    """An objective with every field known: the defaults for every provider."""

    target: float = 99.5
    window_days: int = 30
    latency_p95_ms: float | None = None
    sla: float | None = None
    exclude_maintenance: bool = True


DEFAULT_OBJECTIVE = ResolvedObjective()


class EndpointSpec(_Strict):
    path: str
    method: Literal["GET", "POST"] = "GET"
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    expect: list[Check] = Field(default_factory=lambda: [Check(status=200)])
    weight: int = Field(default=1, ge=1)
    timeout_s: float | None = Field(default=None, gt=0)
    slow_ms: float | None = Field(default=None, gt=0)
    collector: str | None = None
    timestamp: TimestampSpec | None = None
    needs_key: bool | None = None  # overrides the provider's auth.required for this endpoint
    # The provider reports our usage in this endpoint's body (see apiwatch/budget/usage.py).
    usage: Literal["coinmarketcap_key_info", "coingecko_key", "etherscan_apilimit"] | None = None
    # The endpoint tier: limits counted for this endpoint alone (OKX: per endpoint per IP),
    # on top of the provider's own.
    rate_limits: RateLimits | None = None
    objectives: ObjectiveSpec | None = None

    @field_validator("path")
    @classmethod
    def _path_starts_with_slash(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"path must start with '/', got {value!r}")
        return value


class AuthSpec(_Strict):
    """How a key is sent. `keys` names environment variables, never literal keys."""

    location: Literal["header", "query", "none"] = Field(default="none", alias="in")
    name: str | None = None
    prefix: str = ""  # e.g. "Apikey " for CryptoCompare's Authorization header
    keys: list[str] = Field(default_factory=list)
    required: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> AuthSpec:
        if self.location != "none" and not self.name:
            raise ValueError(f"auth in {self.location} needs a name")
        for key in self.keys:
            if not _ENV_NAME.match(key):
                raise ValueError(
                    f"auth.keys lists environment variable names such as ETHERSCAN_KEY_1, "
                    f"not keys; {key[:4]!r}… is not one"
                )
        if self.required and not self.keys:
            raise ValueError("auth.required needs at least one environment variable in keys")
        return self


class RateLimits(_Strict):
    """Limits of one budget tier. Named windows, plus `every`: windows of any whole number
    of seconds, `{seconds: limit}` (OKX's "20 requests per 2 s" is `every: {2: 20}`)."""

    per_second: int | None = Field(default=None, ge=1)
    per_minute: int | None = Field(default=None, ge=1)
    per_hour: int | None = Field(default=None, ge=1)
    per_day: int | None = Field(default=None, ge=1)
    per_month: int | None = Field(default=None, ge=1)
    every: dict[int, int] = Field(default_factory=dict)

    @field_validator("every")
    @classmethod
    def _whole_seconds(cls, value: dict[int, int]) -> dict[int, int]:
        for seconds, limit in value.items():
            if not 1 <= seconds <= 10**7:
                raise ValueError(f"a window is 1 to 10000000 seconds long, got {seconds}")
            if limit < 1:
                raise ValueError(f"the limit per {seconds} s must be at least 1, got {limit}")
        return value

    def windows(self) -> dict[str, int]:
        named = {
            name: value
            for name, value in (
                ("second", self.per_second),
                ("minute", self.per_minute),
                ("hour", self.per_hour),
                ("day", self.per_day),
                ("month", self.per_month),
            )
            if value is not None
        }
        return {**named, **{f"{seconds}s": limit for seconds, limit in sorted(self.every.items())}}


class BookChecks(_Strict):
    """Thresholds of the order-book integrity checks (docs/exchanges.md); the defaults hold
    for liquid spot pairs such as BTC-USDT."""

    max_spread_bps: float = Field(default=50.0, gt=0)
    spread_z: float = Field(default=6.0, gt=0)
    depth_band_pct: float = Field(default=1.0, gt=0, le=50)
    depth_collapse_pct: float = Field(default=80.0, gt=0, lt=100)
    last_outside_bps: float = Field(default=25.0, ge=0)
    # A quiet book may keep its update id for a moment; this long without a change is frozen.
    frozen_after_s: float = Field(default=5.0, gt=0)
    min_history: int = Field(default=10, ge=3, le=10_000)
    history: int = Field(default=60, ge=3, le=10_000)

    @model_validator(mode="after")
    def _history_holds_baseline(self) -> BookChecks:
        if self.min_history > self.history:
            raise ValueError("min_history cannot exceed history")
        return self


# An endpoint's name is stored with every attempt (128 characters at most).
EndpointName = Annotated[str, Field(min_length=1, max_length=128)]


class ProviderSpec(_Strict):
    # The lengths are the database's: ids, names and URLs are stored in the `providers` table.
    id: str = Field(pattern=PROVIDER_ID, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    category: Category
    base_url: str = Field(max_length=500)
    enabled: bool = True
    docs_url: str | None = None
    description: str = ""
    auth: AuthSpec = Field(default_factory=lambda: _shared(AuthSpec()))
    # The IP tier: shared by every endpoint and every key (Binance's weight, Bybit's 600/5 s).
    rate_limits: RateLimits = Field(default_factory=lambda: _shared(RateLimits()))
    # The key tier: counted per API key, each key its own budget.
    key_rate_limits: RateLimits | None = None
    book_checks: BookChecks = Field(default_factory=lambda: _shared(BookChecks()))
    timeout_s: float = Field(default=10.0, gt=0)
    slow_ms: float = Field(default=2000.0, gt=0)
    # How often the health check runs; left out, APIWATCH_HEALTH_INTERVAL_S.
    health_interval_s: float | None = Field(default=None, ge=1, le=86400)
    health: EndpointSpec
    endpoints: dict[EndpointName, EndpointSpec] = Field(default_factory=dict)
    rate_limited_when: list[Signal] = Field(default_factory=list)
    auth_error_when: list[Signal] = Field(default_factory=list)
    # The provider's own "busy" or "internal error" codes (OKX 50013, even with HTTP 429).
    server_error_when: list[Signal] = Field(default_factory=list)
    objectives: ObjectiveSpec = Field(default_factory=lambda: _shared(ObjectiveSpec()))
    # The worker locations that probe this provider (APIWATCH_LOCATION); empty: every one.
    locations: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")]] = Field(
        default_factory=list
    )

    @field_validator(
        "auth", "rate_limits", "key_rate_limits", "book_checks", "health", "objectives"
    )
    @classmethod
    def _one_copy(cls, value: Any) -> Any:
        return _shared(value)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+(/\S*)?$", value):
            raise ValueError(f"base_url must be an http(s) URL, got {value!r}")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _no_health_name_clash(self) -> ProviderSpec:
        if "health" in self.endpoints:
            raise ValueError("'health' is reserved for the health endpoint; rename it")
        return self

    def all_endpoints(self) -> dict[str, EndpointSpec]:
        """The health endpoint first, under the name `health`, then the data endpoints."""
        return {"health": self.health, **self.endpoints}

    def endpoint_needs_key(self, endpoint: EndpointSpec) -> bool:
        return self.auth.required if endpoint.needs_key is None else endpoint.needs_key

    def objective(
        self, endpoint: str | None = None, *, defaults: ResolvedObjective = DEFAULT_OBJECTIVE
    ) -> ResolvedObjective:
        """The objective of the provider, or of one of its endpoints, defaults filled in."""
        resolved = self.objectives.over(defaults)
        spec = self.all_endpoints().get(endpoint) if endpoint else None
        if spec is not None and spec.objectives is not None:
            resolved = spec.objectives.over(resolved)
        return resolved
