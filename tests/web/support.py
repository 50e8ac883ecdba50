"""What the browser tests share: apiwatch and its simulator as real processes (`apiwatch
simulate`, `apiwatch serve`, as a user starts them), Debian's chromium driven by Playwright,
and a page opener that records console errors and failed requests.

Chromium missing (or the npm libraries not installed) skips the tests, except under CI=true,
where it fails them: `.ci/run` installs chromium and `make test` runs `npm ci` first.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from apiwatch.catalogue.loader import load_catalogue

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
AXE = ROOT / "node_modules/axe-core/axe.min.js"
UPLOT = ROOT / "apiwatch/web/static/vendor/uPlot.iife.min.js"
ARTIFACTS = ROOT / "test-artifacts"
ADMIN_KEY = "aw_web-tests-admin-key-000000000000000000000"
SECRET = "WEBTESTSECRET-0123456789abcdef"
KEYED = {
    name: f"{SECRET}-{name}"
    for spec in load_catalogue().providers.values()
    for name in spec.auth.keys
}


def missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} (CI=true: the browser tests must run)")
    pytest.skip(what)


def require_browser() -> None:
    if not Path(CHROMIUM).exists():
        missing(f"{CHROMIUM} is missing: apt-get install -y chromium")
    if not AXE.exists() or not UPLOT.exists():
        missing("the npm libraries are missing: make install (npm ci)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing("playwright is not installed: pip install -e '.[dev]'")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(url: str, process: subprocess.Popen[bytes], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer {url} within {timeout} s")


@dataclass
class Apiwatch:
    url: str
    sim_url: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    # How `apiwatch serve` was started, to stop and start it again on the same port.
    command: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    workdir: Path | None = None

    def client(self, key: str | None = ADMIN_KEY) -> httpx.Client:
        headers = {"X-API-Key": key} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def trigger(self, **body: Any) -> dict[str, Any]:
        with self.client() as client:
            response = client.post("/api/schedule/trigger", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    def scenario(self, provider: str, name: str, **params: Any) -> None:
        response = httpx.put(
            f"{self.sim_url}/_control/scenarios/{provider}",
            json={"name": name, **params},
            timeout=10,
        )
        assert response.status_code == 200, response.text

    def healthy(self, provider: str) -> None:
        response = httpx.delete(f"{self.sim_url}/_control/scenarios/{provider}", timeout=10)
        assert response.status_code in (200, 204), response.text

    def stop_server(self) -> None:
        """Stop `apiwatch serve` (the simulator keeps running): pages lose their live feed."""
        server = self.processes[0]
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    def start_server(self) -> None:
        """Start `apiwatch serve` again, same port and database, and wait for it."""
        assert self.workdir is not None
        with (self.workdir / "apiwatch.log").open("ab") as log:
            server = subprocess.Popen(
                self.command, env=self.env, cwd=self.workdir, stdout=log, stderr=log
            )
        self.processes[0] = server
        _wait(f"{self.url}/healthz", server, "apiwatch")

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def start_apiwatch(workdir: Path, **settings: str) -> Iterator[Apiwatch]:
    """The simulator and apiwatch (scheduler off: tests trigger checks) on free ports, with
    a SQLite database in `workdir`; `settings` are extra APIWATCH_* variables."""
    exe = Path(sys.executable).parent / "apiwatch"
    env = {k: v for k, v in os.environ.items() if not k.startswith("APIWATCH_")}
    env.pop("REDIS_URL", None)
    env.pop("DATABASE_URL", None)
    sim_port, port = free_port(), free_port()
    env.update(KEYED)
    env.update(
        {
            "APIWATCH_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'web.db'}",
            "APIWATCH_UPSTREAM_OVERRIDE": f"http://127.0.0.1:{sim_port}",
            "APIWATCH_ADMIN_KEY": ADMIN_KEY,
            "APIWATCH_SCHEDULER_ENABLED": "false",
            "APIWATCH_PORT": str(port),
            "APIWATCH_HOST": "127.0.0.1",
            "APIWATCH_RECORDER_FLUSH_MS": "10",
            "APIWATCH_LOG_LEVEL": "WARNING",
            # The pages are under test here, not the limits: a run opens dozens of pages
            # with one key within a minute, past the default 100 requests a minute.
            "APIWATCH_API_LIMIT_PER_MINUTE": "100000",
            "APIWATCH_API_LIMIT_PER_HOUR": "1000000",
            "APIWATCH_API_LIMIT_PER_DAY": "10000000",
            **settings,
        }
    )
    log = (workdir / "apiwatch.log").open("ab")
    subprocess.run([str(exe), "db", "upgrade"], env=env, cwd=workdir, check=True, stdout=log)
    sim = subprocess.Popen(
        [str(exe), "simulate", "--port", str(sim_port)],
        env=env,
        cwd=workdir,
        stdout=log,
        stderr=log,
    )
    command = [str(exe), "serve"]
    server = subprocess.Popen(command, env=env, cwd=workdir, stdout=log, stderr=log)
    running = Apiwatch(
        f"http://127.0.0.1:{port}",
        f"http://127.0.0.1:{sim_port}",
        [server, sim],
        command=command,
        env=env,
        workdir=workdir,
    )
    try:
        _wait(f"{running.sim_url}/_control/health", sim, "the simulator")
        _wait(f"{running.url}/healthz", server, "apiwatch")
        yield running
    finally:
        running.stop()
        log.close()


@dataclass
class Opened:
    page: Any
    console_errors: list[str]
    failed: list[str]
    urls: list[str]

    def clean(self) -> None:
        assert not self.console_errors, self.console_errors
        assert not self.failed, self.failed


def open_page(context: Any, url: str, *, ready: bool = True) -> Opened:
    """Open `url` in a new tab, recording console errors, failed requests (network errors
    and HTTP statuses ≥ 400) and every URL requested (WebSockets included); waits for the
    page's scripts to mark `body[data-ready]`."""
    page = context.new_page()
    errors: list[str] = []
    failed: list[str] = []
    urls: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: failed.append(f"{r.url}: {r.failure}"))
    page.on("request", lambda r: urls.append(r.url))
    page.on("websocket", lambda ws: urls.append(ws.url))

    def response(r: Any) -> None:
        if r.status >= 400:
            failed.append(f"{r.url}: HTTP {r.status}")

    page.on("response", response)
    page.goto(url)
    if ready:
        try:
            page.wait_for_selector("body[data-ready]", timeout=15_000)
        except Exception as error:  # say why the page never got ready
            raise AssertionError(
                f"{url} not ready in 15 s: errors={errors} failed={failed}"
            ) from error
    return Opened(page, errors, failed, urls)


def open_live_page(context: Any, url: str) -> Opened:
    """`open_page`, then wait until the page follows `/ws/live` and mark the window, so a
    test can later check that what changed came without a reload (the mark survives)."""
    opened = open_page(context, url)
    opened.page.wait_for_selector('#live[data-state="live"]', timeout=10_000)
    opened.page.evaluate("window.__marker = 'same page'")
    return opened


def signed_in(browser: Any, key: str | None, **options: Any) -> Any:
    """A browser context whose tabs start signed in with `key` (sessionStorage)."""
    context = browser.new_context(**options)
    if key:
        context.add_init_script(f"sessionStorage.setItem('apiwatch.key', {key!r})")
    return context


def on_a_phone(browser: Any, key: str | None = ADMIN_KEY, **options: Any) -> Any:
    """A context the size of a phone (390 by 844, touch), signed in with `key`."""
    return signed_in(
        browser,
        key,
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
        **options,
    )


def sideways_scroll(page: Any) -> int:
    """How many pixels the page is wider than its window (more than 1: it scrolls sideways)."""
    return int(
        page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    )


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Serious and critical axe-core violations on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => (await axe.run(document)).violations")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result
        if v["impact"] in ("serious", "critical")
    ]


def chromium(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
