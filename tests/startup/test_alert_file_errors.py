"""`apiwatch serve` refuses an alerts file whose route names an undefined channel, with the
file and line, before anything starts."""

from __future__ import annotations

from pathlib import Path

from tests.startup.support import free_port, run_cli


def test_serve_refuses_a_route_to_an_undefined_channel(tmp_path: Path) -> None:
    alerts = tmp_path / "alerts.yaml"
    alerts.write_text(
        "channels:\n  pagerduty: {kind: pagerduty, routing_key: R0UT1NGKEY}\n"
        "routes:\n  - match: {severity: [critical]}\n    channels: [pagerduty2]\n"
    )
    result = run_cli(
        "serve",
        cwd=tmp_path,
        env={"APIWATCH_ALERTS_FILE": str(alerts), "APIWATCH_PORT": str(free_port())},
    )
    assert result.returncode == 2, result.stderr
    assert f"{alerts}:5: routes.0.channels.0: channel 'pagerduty2' is not defined" in result.stderr
    assert "R0UT1NGKEY" not in result.stderr
    assert "apiwatch on http" not in result.stderr  # refused before the banner
    assert not (tmp_path / "data" / "api_monitor.db").exists()
