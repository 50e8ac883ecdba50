"""The provider catalogue's schema: what one YAML file may say about one provider.

Every field is validated here so a mistake in a user's file stops start-up with a precise
message instead of surfacing later as a strange probe result.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from jsonpath_ng.ext import parse as parse_jsonpath
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from apiwatch.domain import Category

PROVIDER_ID = r"^[a-z][a-z0-9_]*$"
_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


def _valid_jsonpath(path: str) -> str:
    """Compile it now, so a bad path fails at load (file and line), not at probe time."""
    if not path.startswith("$"):
        raise ValueError(f"json path must start with '$', got {path!r}")
    try:
        parse_jsonpath(path)
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
    per_second: int | None = Field(default=None, ge=1)
    per_minute: int | None = Field(default=None, ge=1)
    per_hour: int | None = Field(default=None, ge=1)
    per_day: int | None = Field(default=None, ge=1)
    per_month: int | None = Field(default=None, ge=1)

    def windows(self) -> dict[str, int]:
        return {
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


class ProviderSpec(_Strict):
    id: str = Field(pattern=PROVIDER_ID)
    name: str
    category: Category
    base_url: str
    enabled: bool = True
    docs_url: str | None = None
    description: str = ""
    auth: AuthSpec = Field(default_factory=AuthSpec)
    rate_limits: RateLimits = Field(default_factory=RateLimits)
    timeout_s: float = Field(default=10.0, gt=0)
    slow_ms: float = Field(default=2000.0, gt=0)
    health: EndpointSpec
    endpoints: dict[str, EndpointSpec] = Field(default_factory=dict)
    rate_limited_when: list[Signal] = Field(default_factory=list)
    auth_error_when: list[Signal] = Field(default_factory=list)

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
