"""The channel registry and `build_channel`: one entry per kind, readable config errors."""

from __future__ import annotations

import typing

import pytest

from apiwatch.alerting.channels import REGISTRY, Channel, build_channel
from apiwatch.alerting.config import ChannelSettings

SECRET = "s3cretVALUE-abcdef0123"


def test_registry_holds_the_five_kinds_the_settings_accept() -> None:
    assert set(REGISTRY) == {"webhook", "slack", "pagerduty", "email", "apprise"}
    accepted = typing.get_args(ChannelSettings.model_fields["kind"].annotation)
    assert set(REGISTRY) == set(accepted)


def test_built_channel_has_the_configured_name_and_its_kind() -> None:
    channel = build_channel(
        "slack", "ops-slack", {"kind": "slack", "enabled": True, "url": "https://hooks.example/x"}
    )
    assert isinstance(channel, Channel)
    assert (channel.name, channel.kind) == ("ops-slack", "slack")


def test_unknown_kind_is_a_value_error_listing_the_known_kinds() -> None:
    with pytest.raises(ValueError, match="unknown kind 'teams'") as raised:
        build_channel("teams", "t", {})
    assert "apprise, email, pagerduty, slack, webhook" in str(raised.value)


@pytest.mark.parametrize(
    ("kind", "options", "expected"),
    [
        ("slack", {"url": f"ftp://hooks.example/{SECRET}"}, "url: must be an http"),
        ("slack", {"url": f"https://hooks.example/{SECRET}", "urll": 1}, "urll: Extra inputs"),
        ("pagerduty", {"url": f"https://pd.example/{SECRET}"}, "routing_key: Field required"),
        ("pagerduty", {"routing_key": SECRET, "timeout_s": -1}, "timeout_s: Input should be"),
        ("email", {"host": "h", "to": ["a@b.c"], "password": SECRET}, "from: Field required"),
        ("webhook", {"url": SECRET}, "url: must be an http"),
        ("apprise", {"urls": []}, "urls: List should have at least 1 item"),
    ],
)
def test_bad_config_names_the_channel_and_field_but_never_the_value(
    kind: str, options: dict[str, object], expected: str
) -> None:
    with pytest.raises(ValueError) as raised:
        build_channel(kind, "mine", options)

    message = str(raised.value)
    assert message.startswith(f"channel 'mine' ({kind}): ")
    assert expected in message
    assert SECRET not in message
    # No chained pydantic error (whose text shows the inputs) rides along in tracebacks.
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
