"""The dashboard at 1,000 providers in headless Chromium: time to interactive of the
overview, a status change to the DOM over the live feed, and the page's own weight.

    .venv/bin/python bench/dashboard_speed.py [--providers 1000] [--rounds 5]

A catalogue directory of generated provider files (health checks against the simulator's
CoinGecko, categories in turn; the built-in providers copied disabled, so nothing leaves
127.0.0.1), `apiwatch simulate` and `apiwatch serve` as processes, one round of checks of
every provider, then per round:

- interactive: a fresh tab navigates to `/`; the time from navigation start to the
  overview's `apiwatch:ready` mark (the one GET /api/overview answered, every card drawn,
  filters live), and the API call's own duration from the resource timing;
- status → DOM: with the overview open and live, the simulator's CoinGecko turns `down`
  and one generated provider is checked; the delay from the status change's time
  (`changed_at`, from the server's clock, the same machine) to the card showing it
  (a MutationObserver's Date.now()).

There is no peer in this run: Uptime Kuma and Gatus cannot be installed here (no network);
their published figures are quoted in docs/dashboard.md for comparison, not measured.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
from local_servers import CHROMIUM, CHROMIUM_ARGS, free_port, wait_http
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
BUILTIN = ROOT / "apiwatch/catalogue/providers"
CATEGORIES = ["market_data", "blockchain_explorers", "news", "sentiment", "onchain"]
ADMIN = "aw_dashboard-bench-admin-key-000000000000000"
API_TIMING = (
    "performance.getEntriesByType('resource').find(e => e.name.endsWith('/api/overview')).duration"
)
PAGE_FILES = [
    *(ROOT / "apiwatch/web/pages").glob("*.html"),
    *(ROOT / "apiwatch/web/static").glob("*.css"),
    *(ROOT / "apiwatch/web/static").glob("*.svg"),
    *(ROOT / "apiwatch/web/static/js").glob("*.js"),
]


def catalogue(directory: Path, n: int, sim_url: str) -> None:
    for source in BUILTIN.glob("*.yaml"):
        lines = [ln for ln in source.read_text().splitlines() if not ln.startswith("enabled:")]
        (directory / source.name).write_text("\n".join([*lines, "enabled: false", ""]))
    for i in range(1, n + 1):
        (directory / f"gen{i:04d}.yaml").write_text(
            f"id: gen{i:04d}\nname: Generated provider {i:04d}\n"
            f"category: {CATEGORIES[i % len(CATEGORIES)]}\n"
            f"base_url: {sim_url}/coingecko/api/v3\n"
            "auth: {in: header, name: x-cg-demo-api-key, keys: [], required: false}\n"
            "rate_limits: {per_minute: 1000}\n"
            "health:\n  path: /ping\n  expect:\n    - {status: 200}\n"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--providers", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    exe = Path(sys.executable).parent / "apiwatch"
    with tempfile.TemporaryDirectory(prefix="bench_dash_") as tmp:
        work = Path(tmp)
        (work / "catalogue").mkdir()
        sim_port, port = free_port(), free_port()
        sim_url = f"http://127.0.0.1:{sim_port}"
        catalogue(work / "catalogue", args.providers, sim_url)
        env = {k: v for k, v in os.environ.items() if not k.startswith("APIWATCH_")}
        env.pop("REDIS_URL", None)
        env.update(
            APIWATCH_DATABASE_URL=f"sqlite+aiosqlite:///{work / 'bench.db'}",
            APIWATCH_CATALOGUE_DIR=str(work / "catalogue"),
            APIWATCH_ADMIN_KEY=ADMIN,
            APIWATCH_SCHEDULER_ENABLED="false",
            APIWATCH_PORT=str(port),
            APIWATCH_LOG_LEVEL="WARNING",
            APIWATCH_API_LIMIT_PER_MINUTE="100000",
            APIWATCH_API_LIMIT_PER_HOUR="1000000",
            APIWATCH_API_LIMIT_PER_DAY="10000000",
        )
        log = (work / "log").open("w")
        subprocess.run([str(exe), "db", "upgrade"], env=env, cwd=work, check=True, stdout=log)
        procs = [
            subprocess.Popen([str(exe), "simulate", "--port", str(sim_port)], env=env, cwd=work,
                             stdout=log, stderr=log),
            subprocess.Popen([str(exe), "serve"], env=env, cwd=work, stdout=log, stderr=log),
        ]  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            wait_http(f"{sim_url}/_control/health")
            wait_http(f"{base}/healthz")
            admin = httpx.Client(base_url=base, headers={"X-API-Key": ADMIN}, timeout=600)
            started = time.perf_counter()
            ran = admin.post("/api/schedule/trigger", json={}).json()["ran"]
            print(f"checked {ran} providers in {time.perf_counter() - started:.1f} s")
            results = measure(base, admin, sim_url, args)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(timeout=20)
    weight = sum(path.stat().st_size for path in PAGE_FILES)
    results["page_code_and_styles_bytes"] = weight
    print(json.dumps(results, indent=2))


def measure(base: str, admin: httpx.Client, sim_url: str, args: argparse.Namespace) -> dict:
    ready, api_ms, delays = [], [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.add_init_script(f"sessionStorage.setItem('apiwatch.key', {ADMIN!r})")
        for _ in range(args.rounds):
            page = context.new_page()
            page.goto(base + "/")
            page.wait_for_selector("body[data-ready]", timeout=60_000)
            ready.append(
                page.evaluate("performance.getEntriesByName('apiwatch:ready')[0].startTime")
            )
            api_ms.append(page.evaluate(API_TIMING))
            cards = page.locator(".card").count()
            page.close()
        page = context.new_page()
        page.goto(base + "/")
        page.wait_for_selector('#live[data-state="live"]', timeout=60_000)
        for r in range(args.rounds):
            pid = f"gen{(r + 1) * (args.providers // (args.rounds + 1)):04d}"
            page.evaluate(
                """(pid) => {
                  window.__seen = null;
                  const observer = new MutationObserver(() => {
                    const card = document.querySelector(`.card[data-id="${pid}"]`);
                    if (card && card.dataset.status === 'degraded' && !window.__seen) {
                      window.__seen = Date.now(); observer.disconnect();
                    }
                  });
                  observer.observe(document.getElementById('groups'),
                                   {subtree: true, childList: true, attributes: true});
                }""",
                pid,
            )
            httpx.put(
                f"{sim_url}/_control/scenarios/coingecko", json={"name": "down", "status": 503}
            )
            admin.post("/api/schedule/trigger", json={"provider": pid})
            page.wait_for_function("window.__seen !== null", timeout=10_000)
            seen = page.evaluate("window.__seen")
            change = admin.get(f"/api/providers/{pid}").json()["recent_changes"][0]
            at = datetime.fromisoformat(change["changed_at"].replace("Z", "+00:00"))
            delays.append(seen - at.timestamp() * 1000)
            httpx.delete(f"{sim_url}/_control/scenarios/coingecko")
        browser.close()
    return {
        "providers": args.providers,
        "cards": cards,
        "interactive_ms_median": round(statistics.median(ready), 1),
        "interactive_ms_rounds": [round(x, 1) for x in ready],
        "overview_api_ms_median": round(statistics.median(api_ms), 1),
        "status_change_to_dom_ms_median": round(statistics.median(delays), 1),
        "status_change_to_dom_ms_rounds": [round(x, 1) for x in delays],
    }


if __name__ == "__main__":
    main()
