"""uPlot against Chart.js: the size each adds to a page and the time to draw a 10,000-point
latency series in headless Chromium (the measurement behind the dashboard's choice).

    .venv/bin/python bench/chart_libraries.py [--points 10000] [--rounds 7]

uPlot comes from the repository's node_modules (`make install`); Chart.js is not a
dependency, so it is installed with npm into a temporary directory for the run.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import subprocess
import tempfile
from pathlib import Path

from local_servers import CHROMIUM, CHROMIUM_ARGS
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
CHARTJS = "chart.js@4.6.1"

# Each draws `points` (t, ms) pairs into a 1200x300 canvas and returns the milliseconds it
# took, synchronously (Chart.js with animation off draws in the constructor, like uPlot).
UPLOT = """(n) => {
  const xs = new Float64Array(n), ys = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    xs[i] = 1.7e9 + i * 60; ys[i] = 80 + 40 * Math.sin(i / 50) + (i % 7) * 3;
  }
  const el = document.createElement('div'); document.body.replaceChildren(el);
  const t0 = performance.now();
  new uPlot({width: 1200, height: 300, series: [{}, {label: 'ms', stroke: '#36c'}]}, [xs, ys], el);
  return performance.now() - t0;
}"""
CHART = """(n) => {
  const data = [];
  for (let i = 0; i < n; i++) {
    data.push({x: (1.7e9 + i * 60) * 1000, y: 80 + 40 * Math.sin(i / 50) + (i % 7) * 3});
  }
  const c = document.createElement('canvas'); c.width = 1200; c.height = 300;
  document.body.replaceChildren(c);
  const t0 = performance.now();
  new Chart(c, {type: 'line',
    data: {datasets: [{label: 'ms', data, pointRadius: 0, borderWidth: 1}]},
    options: {animation: false, responsive: false, parsing: false, normalized: true,
              scales: {x: {type: 'linear'}}}});
  return performance.now() - t0;
}"""


def sizes(path: Path) -> tuple[int, int]:
    raw = path.read_bytes()
    return len(raw), len(gzip.compress(raw, 9))


def measure(script: Path, draw: str, points: int, rounds: int) -> list[float]:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            times = []
            for _ in range(rounds):  # a fresh page each round: no warm JIT from the last one
                page = browser.new_page()
                page.set_content("<!doctype html><body></body>")
                page.add_script_tag(path=str(script))
                times.append(page.evaluate(draw, points))
                page.close()
            return times
        finally:
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    uplot = ROOT / "node_modules/uplot/dist/uPlot.iife.min.js"
    if not uplot.exists():
        raise SystemExit("run `make install` first (npm ci puts uPlot in node_modules)")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--prefix", tmp, CHARTJS],
            check=True,
            capture_output=True,
        )
        chartjs = Path(tmp) / "node_modules/chart.js/dist/chart.umd.min.js"
        results = {}
        for name, script, draw in (("uPlot", uplot, UPLOT), ("Chart.js", chartjs, CHART)):
            raw, gz = sizes(script)
            times = measure(script, draw, args.points, args.rounds)
            results[name] = {
                "bytes": raw,
                "gzip_bytes": gz,
                "render_ms_median": round(statistics.median(times), 1),
                "render_ms_rounds": [round(t, 1) for t in times],
            }
    u, c = results["uPlot"], results["Chart.js"]
    results["ratios"] = {
        "size_chartjs_over_uplot": round(c["bytes"] / u["bytes"], 2),
        "render_chartjs_over_uplot": round(c["render_ms_median"] / u["render_ms_median"], 2),
    }
    print(json.dumps({"points": args.points, **results}, indent=2))


if __name__ == "__main__":
    main()
