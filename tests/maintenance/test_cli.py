"""`apiwatch serve` and `apiwatch report` refuse a bad maintenance file with its file, line
and field, before anything starts."""

from __future__ import annotations

from pathlib import Path

from tests.startup.support import free_port, run_cli

BAD = """\
windows:
  nightly:
    title: Nightly
    matchers: {provider: binance}
    recurrence: {every: cron, cron: "0 25 * * *"}
    duration_s: 600
"""


def test_serve_and_report_refuse_a_bad_maintenance_file(tmp_path: Path) -> None:
    path = tmp_path / "maintenance.yaml"
    path.write_text(BAD)
    env = {"APIWATCH_MAINTENANCE_FILE": str(path), "APIWATCH_PORT": str(free_port())}
    served = run_cli("serve", cwd=tmp_path, env=env)
    assert served.returncode == 2, served.stderr
    assert f"{path}:5: windows.nightly.recurrence.cron:" in served.stderr
    assert "apiwatch on http" not in served.stderr  # refused before the banner
    reported = run_cli("report", "--out", str(tmp_path / "r.html"), cwd=tmp_path, env=env)
    assert reported.returncode == 2, reported.stderr
    assert f"{path}:5: windows.nightly.recurrence.cron:" in reported.stderr
    assert not (tmp_path / "r.html").exists()
