"""A bad setting names the variable and the value, in one line, with exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.startup.support import run_cli


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("APIWATCH_PORT", "abc", "APIWATCH_PORT='abc' is not a port number (1..65535)"),
        ("APIWATCH_PORT", "70000", "APIWATCH_PORT='70000' is not a port number (1..65535)"),
        ("APIWATCH_HEALTH_INTERVAL_S", "soon", "APIWATCH_HEALTH_INTERVAL_S='soon' is not a number"),
        ("APIWATCH_LOG_JSON", "maybe", "APIWATCH_LOG_JSON='maybe' is not true or false"),
        ("APIWATCH_SLO_TARGET", "100", "APIWATCH_SLO_TARGET='100'"),
        ("APIWATCH_SLO_TARGET", "high", "APIWATCH_SLO_TARGET='high' is not a number"),
        ("APIWATCH_SLO_WINDOW_DAYS", "120", "APIWATCH_SLO_WINDOW_DAYS='120'"),
        ("APIWATCH_FRESHNESS_TTL_S", "{oops", "APIWATCH_FRESHNESS_TTL_S='{oops' is not valid JSON"),
        (
            "APIWATCH_UPSTREAM_OVERRIDE",
            "127.0.0.1:7861",
            "APIWATCH_UPSTREAM_OVERRIDE='127.0.0.1:7861' does not look like http://HOST:PORT",
        ),
    ],
)
def test_bad_setting_names_variable_and_value(
    tmp_path: Path, variable: str, value: str, expected: str
) -> None:
    result = run_cli("providers", cwd=tmp_path, env={variable: value})
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
