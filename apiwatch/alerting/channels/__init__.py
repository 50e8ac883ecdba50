"""Notification channels: the registry of kinds, and `build_channel` to make one from settings.

Adding a channel is one module here with a pydantic config and `build(config) -> Channel`,
plus one line in `REGISTRY`; the contract test in tests/alerting/channels runs over every
entry (delivery, retry decision per status, no secret in errors or logs).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from apiwatch.alerting.channels import apprise_channel, email, pagerduty, slack, webhook
from apiwatch.alerting.channels.base import Channel, DeliveryError

__all__ = ["REGISTRY", "Channel", "DeliveryError", "build_channel"]

REGISTRY: dict[str, Callable[[dict[str, Any]], Channel]] = {
    "webhook": webhook.build,
    "slack": slack.build,
    "pagerduty": pagerduty.build,
    "email": email.build,
    "apprise": apprise_channel.build,
}

# Keys the settings layer adds around a channel's own options.
_SETTINGS_KEYS = ("kind", "enabled")


def _readable(error: ValidationError) -> str:
    """Field and problem for each error, never the offending value (it may be a secret)."""
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in item["loc"]) or "(config)"
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{field}: {message}")
    return "; ".join(problems)


def build_channel(kind: str, name: str, config: dict[str, Any]) -> Channel:
    """The channel `name` of `kind` from its options; `ValueError` naming the field if the
    options are wrong, or listing the known kinds if `kind` is not one."""
    factory = REGISTRY.get(kind)
    if factory is None:
        known = ", ".join(sorted(REGISTRY))
        raise ValueError(f"channel {name!r}: unknown kind {kind!r} (known: {known})")
    options = {k: v for k, v in config.items() if k not in _SETTINGS_KEYS}
    options["name"] = name
    try:
        return factory(options)
    except ValidationError as error:
        # `from None`: the ValidationError's own text shows the input values.
        raise ValueError(f"channel {name!r} ({kind}): {_readable(error)}") from None
