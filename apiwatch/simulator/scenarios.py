"""Fault scenarios: their names, their parameters with defaults and bounds, and parsing.

A `Scenario` is plain data. `normalize` checks it against `SCENARIO_PARAMS` and fills in
defaults, so every code path (CLI string, control endpoint JSON, in-process call) ends with
the same validated value and the same error messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_PROVIDER_ID = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Scenario:
    """How one provider misbehaves. `params` holds only that scenario's parameters."""

    name: str = "healthy"
    params: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The control endpoint's form: `{"name": "slow", "ms": 3000}`."""
        return {"name": self.name, **self.params}


@dataclass(frozen=True)
class Param:
    kind: type  # int or float
    default: int | float
    low: float
    high: float
    help: str

    def describe(self, name: str) -> str:
        kind = "integer" if self.kind is int else "number"
        return f"{name} ({kind} {_fmt(self.low)}..{_fmt(self.high)}, default {_fmt(self.default)})"


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


MIB = 1024 * 1024

SCENARIO_PARAMS: dict[str, dict[str, Param]] = {
    "healthy": {},
    "slow": {"ms": Param(float, 3000, 0, 600_000, "delay before a normal answer")},
    "flaky": {"p": Param(float, 0.5, 0, 1, "probability of a server error per request")},
    "down": {"status": Param(int, 503, 400, 599, "HTTP status of every answer")},
    "timeout": {},
    "reset": {},
    "rate_limited": {
        "retry_after": Param(int, 60, 0, 86_400, "seconds in Retry-After, where sent"),
        "ban_after": Param(int, 3, 1, 1_000, "Binance: consecutive 429s before the 418 ban"),
        "ban_s": Param(int, 120, 1, 259_200, "Binance: Retry-After seconds of the 418 ban"),
        "http_status": Param(
            int,
            0,
            0,
            599,
            "Bybit: 403 for the IP ban instead of retCode 10006 in a 200; "
            "OKX: 200 instead of 429 around code 50011; 0 = the provider's usual",
        ),
    },
    "auth_failure": {},
    "garbage": {},
    "html_error": {"status": Param(int, 0, 0, 599, "HTTP status; 0 = the provider's usual")},
    "stale": {"age_s": Param(float, 172_800, 0, 10 * 365 * 86_400, "age of data timestamps")},
    "oversized": {"bytes": Param(int, 3 * MIB, 64, 1024 * MIB, "body size in bytes")},
    "divergent": {"pct": Param(float, 5, -90, 1_000, "percent added to every price")},
    # Order-book integrity faults (exchanges only; see simulator/books.py).
    "crossed_book": {},
    "frozen_book": {},
    "thin_book": {},
    "wide_spread": {"bps": Param(float, 200, 0, 10_000, "spread of the book in basis points")},
    "locked_book": {},
    "one_sided_book": {},
    "non_positive_book": {},
    "duplicate_level_book": {},
    "unordered_book": {},
    "rewound_book": {},
    "unreadable_book": {},
    # Below the 1 % price consensus by default, so only the ticker's own check sees it.
    "ticker_outside": {
        "bps": Param(float, 60, 0, 10_000, "how far the last price lies above the best ask")
    },
    # A venue's business error code inside an HTTP 200 (Bybit's retCode, OKX's code).
    "error_code": {"code": Param(int, 10016, 1, 99_999, "Bybit retCode or OKX code")},
}

SCENARIO_NAMES: tuple[str, ...] = tuple(SCENARIO_PARAMS)

HEALTHY = Scenario("healthy", {})


def describe_scenarios() -> str:
    """One line per scenario with its parameters, for error messages and help text."""
    lines = []
    for name, params in SCENARIO_PARAMS.items():
        described = ", ".join(p.describe(key) for key, p in params.items())
        lines.append(f"{name}({described})" if described else name)
    return "; ".join(lines)


def _coerce(scenario: str, key: str, spec: Param, value: Any) -> int | float:
    if isinstance(value, bool):
        raise ValueError(f"scenario {scenario!r}: {key} must be a number, got {value!r}")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValueError(
                f"scenario {scenario!r}: {key} must be a number, got {value!r}"
            ) from None
    if not isinstance(value, int | float) or value != value:  # NaN fails the second test
        raise ValueError(f"scenario {scenario!r}: {key} must be a number, got {value!r}")
    if spec.kind is int:
        if float(value) != int(value):
            raise ValueError(f"scenario {scenario!r}: {key} must be an integer, got {value!r}")
        value = int(value)
    else:
        value = int(value) if float(value).is_integer() else float(value)
    if not spec.low <= value <= spec.high:
        raise ValueError(
            f"scenario {scenario!r}: {key}={_fmt(value)} is out of range; "
            f"allowed {_fmt(spec.low)}..{_fmt(spec.high)}"
        )
    if scenario == "html_error" and key == "status" and 0 < value < 400:
        raise ValueError(
            f"scenario 'html_error': status={value} is not an error; allowed 400..599 or 0"
        )
    return value


def make_scenario(name: str, params: dict[str, Any] | None = None) -> Scenario:
    """Validate a scenario name and its parameters; fill in defaults. Raises ValueError."""
    if name not in SCENARIO_PARAMS:
        raise ValueError(f"unknown scenario {name!r}; allowed: {', '.join(SCENARIO_NAMES)}")
    specs = SCENARIO_PARAMS[name]
    given = dict(params or {})
    unknown = sorted(set(given) - set(specs))
    if unknown:
        allowed = ", ".join(p.describe(k) for k, p in specs.items()) or "no parameters"
        raise ValueError(
            f"unknown parameter {', '.join(map(repr, unknown))} for scenario {name!r}; "
            f"allowed: {allowed}"
        )
    values = {
        key: _coerce(name, key, spec, given[key]) if key in given else spec.default
        for key, spec in specs.items()
    }
    return Scenario(name, values)


def normalize(scenario: Scenario) -> Scenario:
    return make_scenario(scenario.name, scenario.params)


def from_json(body: Any) -> Scenario:
    """Build a scenario from the control endpoint's `{"name": ..., **params}` body."""
    if not isinstance(body, dict):
        raise ValueError('body must be a JSON object like {"name": "slow", "ms": 3000}')
    if "name" not in body:
        raise ValueError(f'body needs "name", one of: {", ".join(SCENARIO_NAMES)}')
    name = body["name"]
    if not isinstance(name, str):
        raise ValueError(f'"name" must be a string, got {name!r}')
    return make_scenario(name, {k: v for k, v in body.items() if k != "name"})


def parse_scenario_arg(text: str) -> tuple[str, Scenario]:
    """Parse `provider=name[:key=value[,key=value...]]`, e.g. `coingecko=slow:ms=3000`.

    Parameters may also be separated by further colons (`binance=rate_limited:ban_after=2:
    ban_s=60`). Whether the provider exists is checked where the providers are known.
    """
    provider, sep, rest = text.strip().partition("=")
    provider = provider.strip()
    if not sep or not rest.strip():
        raise ValueError(
            f"expected PROVIDER=SCENARIO[:KEY=VALUE,...], e.g. coingecko=slow:ms=3000; got {text!r}"
        )
    if not _PROVIDER_ID.match(provider):
        raise ValueError(
            f"{provider!r} is not a provider id (lowercase letters, digits, underscores)"
        )
    name, _, param_text = rest.partition(":")
    params: dict[str, str] = {}
    for item in re.split(r"[,:]", param_text):
        item = item.strip()
        if not item:
            continue
        key, eq, value = item.partition("=")
        if not eq or not key.strip() or not value.strip():
            raise ValueError(f"scenario parameter {item!r} in {text!r} is not KEY=VALUE")
        if key.strip() in params:
            raise ValueError(f"scenario parameter {key.strip()!r} is given twice in {text!r}")
        params[key.strip()] = value.strip()
    return provider, make_scenario(name.strip(), params)
