"""The container files, checked without a Docker engine (none runs here): every variable
they set is a real setting, the compose file wires what it claims, hadolint is clean, and
the Dockerfile's own install, start and health commands (deploy/container.sh) work in a
fresh virtual environment against the simulator."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from apiwatch.settings import Settings
from apiwatch.simulator import Simulator
from tests.inbound.test_redis_processes import free_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
APIWATCH_SERVICES = ("api", "worker-1", "worker-2")


def setting_names() -> set[str]:
    names = set()
    prefix = Settings.model_config.get("env_prefix", "")
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        choices = getattr(alias, "choices", None)
        if choices:
            names.update(str(choice).upper() for choice in choices)
        else:
            names.add(f"{prefix}{name}".upper())
    return names


def dockerfile_env() -> dict[str, str]:
    text = (DEPLOY / "Dockerfile").read_text()
    env: dict[str, str] = {}
    for block in re.findall(r"^ENV (.+?)(?<!\\)$", text, flags=re.M | re.S):
        for pair in re.findall(r"(\w+)=(\S+)", block):
            env[pair[0]] = pair[1]
    return env


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def test_every_variable_the_image_and_compose_set_for_apiwatch_is_a_setting() -> None:
    known = setting_names()
    image = {k for k in dockerfile_env() if k.startswith("APIWATCH_") or k.endswith("_URL")}
    assert image, "the Dockerfile sets no apiwatch variable"
    assert image <= known, image - known
    services = compose()["services"]
    for name in APIWATCH_SERVICES:
        env = set(services[name]["environment"])
        assert env <= known, (name, env - known)
        assert services[name]["build"]["dockerfile"] == "deploy/Dockerfile"


def test_compose_wires_two_workers_an_api_and_the_monitoring() -> None:
    services = compose()["services"]
    assert {s: services[s]["environment"]["APIWATCH_ROLE"] for s in APIWATCH_SERVICES} == {
        "api": "api",
        "worker-1": "worker",
        "worker-2": "worker",
    }
    assert {"postgres", "redis", "prometheus", "grafana"} <= set(services)
    assert "--appendfsync" in services["redis"]["command"]  # budgets survive a Redis restart
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {t.split(":")[0] for t in scrape["scrape_configs"][0]["static_configs"][0]["targets"]}
    assert targets == set(APIWATCH_SERVICES)
    for volume in services["grafana"]["volumes"]:
        source = volume.split(":")[0]
        assert (DEPLOY / source).exists(), f"grafana mounts {source}, which does not exist"


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    result = subprocess.run(
        [hadolint, str(DEPLOY / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_runs_as_user_1000_on_port_7860_with_a_healthcheck() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^USER 1000$", text, flags=re.M)
    assert re.search(r"^EXPOSE 7860$", text, flags=re.M)
    assert 'CMD ["apiwatch-container", "healthcheck"]' in text
    assert 'VOLUME ["/data"]' in text
    assert text.count("FROM ") == 2  # the npm stage and the runtime


@pytest.mark.slow(25)
async def test_the_containers_install_start_and_health_commands_work_in_a_fresh_venv(
    tmp_path: Path,
) -> None:
    venv = tmp_path / "venv"
    env = {**os.environ, "APP_VENV": str(venv)}
    script = str(DEPLOY / "container.sh")
    install = subprocess.run(
        ["sh", script, "install", str(ROOT)], env=env, capture_output=True, text=True
    )
    assert install.returncode == 0, install.stderr[-3000:]
    assert (venv / "bin" / "apiwatch").exists()
    port = free_port()
    async with Simulator() as sim:
        run_env = {
            **dockerfile_env(),
            **{k: v for k, v in env.items() if k not in ("DATABASE_URL",)},
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/data.db",
            "APIWATCH_HOST": "127.0.0.1",
            "APIWATCH_PORT": str(port),
            "APIWATCH_UPSTREAM_OVERRIDE": sim.url,
            "APIWATCH_ADMIN_KEY": "aw_container-test-admin-key-0000000000000",
            "PATH": os.environ["PATH"],
        }
        server = subprocess.Popen(
            ["sh", script, "start"],
            env=run_env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                assert server.poll() is None, server.stderr.read().decode()[-3000:]
                try:
                    async with httpx.AsyncClient() as client:
                        if (
                            await client.get(f"http://127.0.0.1:{port}/healthz")
                        ).status_code == 200:
                            break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail("the container's start command did not serve /healthz in 60 s")
                time.sleep(0.2)
            health = subprocess.run(["sh", script, "healthcheck"], env=run_env, check=False)
            assert health.returncode == 0
        finally:
            server.terminate()
            server.wait(timeout=20)
        health = subprocess.run(
            ["sh", script, "healthcheck"], env=run_env, capture_output=True, check=False
        )
        assert health.returncode != 0  # and it notices a dead server
