"""Alert settings: packaged defaults, a user's YAML merged over them, patches, readable errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from apiwatch.alerting.config import (
    PATCH_SOURCE,
    AlertConfigError,
    AlertSettings,
    load_alert_settings,
)
from apiwatch.domain import Severity


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "alerts.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_packaged_defaults_hold_the_issue_thresholds_and_windows() -> None:
    settings = load_alert_settings()
    rules = settings.rules
    assert (rules.response_time.warning_s, rules.response_time.critical_s) == (1.0, 2.0)
    assert (rules.error_rate.warning_pct, rules.error_rate.critical_pct) == (5.0, 10.0)
    assert rules.latency_anomaly.z_threshold == 2.5
    assert rules.latency_anomaly.window == 50
    assert (rules.inbound_usage_spike.warning_ratio, rules.inbound_usage_spike.critical_ratio) == (
        2.0,
        3.0,
    )
    assert rules.inbound_unauthorized.warning_per_hour == 5
    assert settings.dedup_window_s == 300
    assert settings.group_window_s == 5
    assert settings.max_batch == 50
    assert settings.channels == {}
    assert settings.llm.timeout_s == 10
    # The YAML file and the model's own defaults agree.
    assert settings == AlertSettings()


def test_default_routes_send_warnings_to_slack_and_critical_to_pagerduty() -> None:
    settings = load_alert_settings()
    assert settings.route(severity=Severity.WARNING, category=None, provider="x") == ["slack"]
    assert settings.route(severity="critical", category="news", provider="x") == ["pagerduty"]
    assert settings.undefined_channels() == ["pagerduty", "slack"]


def test_user_file_overrides_only_what_it_names(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "rules:\n  response_time:\n    warning_s: 0.5\n"
        "routes:\n  - match: {category: [news]}\n    channels: [mail]\n"
        # A complete channel: an incomplete one is refused at load (see below).
        "channels:\n  mail: {kind: email, host: 127.0.0.1, port: 2525, from: a@b.test, "
        "to: [c@d.test]}\n",
    )
    settings = load_alert_settings(user_path=path)
    assert settings.rules.response_time.warning_s == 0.5
    assert settings.rules.response_time.critical_s == 2.0  # kept from the defaults
    assert settings.route(severity="warning", category="news", provider=None) == ["mail"]
    assert settings.route(severity="warning", category="market_data", provider=None) == []
    assert settings.channel_configs() == {
        "mail": {
            "kind": "email",
            "host": "127.0.0.1",
            "port": 2525,
            "from": "a@b.test",
            "to": ["c@d.test"],
        }
    }


def test_patch_is_merged_over_the_file_and_null_removes_a_channel(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "channels:\n  hook: {kind: webhook, url: 'http://127.0.0.1:9/x'}\n"
        "  chat: {kind: slack, webhook_url: 'http://127.0.0.1:9/y'}\n",
    )
    settings = load_alert_settings(
        user_path=path,
        patch={"dedup_window_s": 120, "channels": {"chat": None}, "rules": {"key_expired": {}}},
    )
    assert settings.dedup_window_s == 120
    assert set(settings.channels) == {"hook"}
    patched = settings.merged({"rules": {"error_rate": {"enabled": False}}})
    assert patched.rules.error_rate.enabled is False
    assert patched.dedup_window_s == 120


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "dedup_window_s: 300\nrules:\n  response_time: [unclosed\n")
    with pytest.raises(AlertConfigError) as caught:
        load_alert_settings(user_path=path)
    problem = caught.value.problems[0]
    assert problem.source == str(path)
    assert problem.line is not None and problem.line >= 3
    assert problem.field == "(yaml)"
    assert f"{path}:{problem.line}" in str(caught.value)


def test_invalid_value_in_file_names_file_line_and_field(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "group_window_s: 5\nrules:\n  error_rate:\n    warning_pct: lots\n    typo_field: 1\n",
    )
    with pytest.raises(AlertConfigError) as caught:
        load_alert_settings(user_path=path)
    by_field = {p.field: p for p in caught.value.problems}
    assert by_field["rules.error_rate.warning_pct"].line == 4
    assert "'lots'" in by_field["rules.error_rate.warning_pct"].message
    assert by_field["rules.error_rate.typo_field"].line == 5
    assert "unknown field" in by_field["rules.error_rate.typo_field"].message
    assert str(path) in str(caught.value)


def test_crossed_thresholds_are_refused_naming_the_rule() -> None:
    with pytest.raises(AlertConfigError) as caught:
        load_alert_settings(patch={"rules": {"response_time": {"warning_s": 3.0}}})
    problem = caught.value.problems[0]
    assert problem.source == PATCH_SOURCE
    assert problem.field == "rules.response_time"
    assert "critical_s must be at least warning_s" in problem.message


def test_patch_errors_are_value_errors_that_name_the_field() -> None:
    settings = load_alert_settings()
    with pytest.raises(ValueError, match=r"max_batch: Input should be less than or equal to"):
        settings.merged({"max_batch": 100_000})


def test_llm_key_in_settings_is_refused_without_echoing_it() -> None:
    with pytest.raises(AlertConfigError) as caught:
        load_alert_settings(patch={"llm": {"url": "http://127.0.0.1:1", "key": "sk-SECRET-123"}})
    text = str(caught.value)
    assert "APIWATCH_LLM_KEY" in text
    assert "sk-SECRET-123" not in text
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_bad_channel_option_type_does_not_echo_the_value() -> None:
    with pytest.raises(AlertConfigError) as caught:
        load_alert_settings(patch={"channels": {"x": {"kind": "sms-secret-token"}}})
    assert "channels.x.kind" in str(caught.value)
    assert "sms-secret-token" not in str(caught.value)


def test_public_view_masks_channel_secrets() -> None:
    settings = load_alert_settings(
        patch={
            "channels": {
                # Complete channels: incomplete ones are refused at load.
                "pd": {"kind": "pagerduty", "routing_key": "R0UT1NGKEY"},
                "mail": {
                    "kind": "email",
                    "username": "ops",
                    "password": "hunter2",
                    "host": "127.0.0.1",
                    "from": "a@b.test",
                    "to": ["c@d.test"],
                },
            }
        }
    )
    view = settings.public_view()
    assert view["channels"]["pd"]["routing_key"] == "***"
    assert view["channels"]["mail"]["password"] == "***"
    assert view["channels"]["mail"]["host"] == "127.0.0.1"
    assert "R0UT1NGKEY" not in str(view) and "hunter2" not in str(view)


def test_missing_user_file_is_reported_as_such(tmp_path: Path) -> None:
    with pytest.raises(AlertConfigError, match=r"nope\.yaml: \(file\)"):
        load_alert_settings(user_path=tmp_path / "nope.yaml")


def test_route_to_an_undefined_channel_is_refused_with_file_and_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "channels:\n  pagerduty: {kind: pagerduty, routing_key: R0UT1NGKEY}\n"
        "routes:\n  - match: {severity: [critical]}\n    channels: [pagerduty2]\n",
    )
    with pytest.raises(AlertConfigError) as caught:
        load_alert_settings(user_path=path)
    assert str(caught.value.problems[0]) == (
        f"{path}:5: routes.0.channels.0: channel 'pagerduty2' is not defined under channels "
        "(defined: pagerduty)"
    )


def test_packaged_routes_to_placeholder_channels_are_not_refused() -> None:
    # The defaults route to `slack` and `pagerduty`, which nobody has defined yet.
    assert load_alert_settings().undefined_channels() == ["pagerduty", "slack"]


def test_channel_secret_errors_name_file_and_line_without_the_value(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "channels:\n  team:\n    kind: slack\n    url: 'hunter2-not-a-url'\n"
        "  pager:\n    kind: pagerduty\n",
    )
    with pytest.raises(AlertConfigError) as caught:
        load_alert_settings(user_path=path)
    lines = [str(problem) for problem in caught.value.problems]
    assert lines[0].startswith(f"{path}:4: channels.team: url: ")
    assert lines[1].startswith(f"{path}:5: channels.pager: routing_key: Field required")
    assert "hunter2" not in str(caught.value)
