"""`make demo` can move both of its ports; a port in use is named before anything starts."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.startup.support import free_port, port_in_use, run_cli

ROOT = Path(__file__).resolve().parents[2]


def test_make_demo_passes_its_port_variables() -> None:
    # Outside any make that runs this suite (`make test` would add its own lines).
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    done = subprocess.run(
        ["make", "-n", "--no-print-directory", "demo", "SIM_PORT=7999", "PORT=7998"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    [command] = [line for line in done.stdout.splitlines() if "apiwatch demo" in line]
    assert "--sim-port 7999" in command and "--port 7998" in command


def test_demo_simulator_port_from_the_environment_is_checked_first(tmp_path: Path) -> None:
    with port_in_use() as port:
        result = run_cli(
            "demo",
            cwd=tmp_path,
            env={"APIWATCH_SIM_PORT": str(port), "APIWATCH_PORT": str(free_port())},
            timeout=60,
        )
    assert result.returncode == 2, result.stderr
    assert f"APIWATCH_SIM_PORT={port}: port {port} on 127.0.0.1 is already in use" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 2
    assert not (tmp_path / "data" / "demo.db").exists()
