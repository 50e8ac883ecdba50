// Charts: uPlot (window.uPlot, from /static/vendor, installed by `make install`) for the
// time series, a plain SVG polyline for the overview's sparklines (a thousand of them).
import { esc } from './common.js';

const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

export const OUTCOME_COLOURS = {
  ok: '#2da44e', slow: '#bf8700', rate_limited: '#d4a72c', timeout: '#8250df',
  connection_error: '#6e40c9', server_error: '#cf222e', client_error: '#e16f24',
  auth_error: '#bc4c00', invalid_payload: '#a40e26', error: '#cf222e',
};

export const CATEGORY_COLOURS = {
  market_data: '#0b72d9', blockchain_explorers: '#8250df', news: '#bf8700', sentiment: '#2da44e', onchain: '#d9480f',
};

/** An SVG sparkline of `values` (nulls are gaps), labelled for screen readers. */
export function sparkline(values, label) {
  const points = values.map((v, i) => [i, v]).filter(([, v]) => v != null);
  if (points.length < 2) return '<div class="spark-empty">latency trend: under 2 hours of data</div>';
  const max = Math.max(...points.map(([, v]) => v));
  const min = Math.min(...points.map(([, v]) => v));
  const span = max - min || 1;
  const n = values.length - 1 || 1;
  const coords = points.map(([i, v]) => `${((i / n) * 100).toFixed(1)},${(26 - ((v - min) / span) * 24).toFixed(1)}`).join(' ');
  return `<svg class="spark" viewBox="0 0 100 28" preserveAspectRatio="none" role="img"
    aria-label="${esc(label)}: ${Math.round(min)}–${Math.round(max)} ms"><polyline vector-effect="non-scaling-stroke" points="${coords}"/></svg>`;
}

function axes(yLabel, integer = false) {
  const stroke = css('--muted') || '#666';
  const grid = { stroke: css('--border') || '#ddd', width: 1 };
  const y = { stroke, grid, ticks: grid, label: yLabel, size: 60 };
  if (integer) y.incrs = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000];
  return [{ stroke, grid, ticks: grid }, y];
}

function available(el) {
  if (window.uPlot) return true;
  el.innerHTML = '<p class="notice warn">Charts need uPlot: run <code>make install</code>.</p>';
  return false;
}

/** A line chart: `xs` in unix seconds, `series` [{label, values, colour}], `yLabel` with unit. */
export function lineChart(el, { xs, series, yLabel, height = 240 }) {
  if (!available(el)) return null;
  el.replaceChildren();
  const opts = {
    width: Math.max(280, el.clientWidth || 600),
    height,
    scales: { x: { time: true } },
    axes: axes(yLabel),
    series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.colour, width: 2, spanGaps: false,
      value: (u, v) => (v == null ? '—' : `${v.toFixed(1)} ${yLabel.split(' ').pop().replace(/[()]/g, '')}`) }))],
  };
  const plot = new window.uPlot(opts, [xs, ...series.map((s) => s.values)], el);
  fit(el, plot);
  return plot;
}

/** Stacked bars: each series' values are added on top of the ones before. */
export function stackedBars(el, { xs, series, yLabel, height = 240 }) {
  if (!available(el)) return null;
  el.replaceChildren();
  const sums = [];
  let running = xs.map(() => 0);
  for (const s of series) {
    running = running.map((r, i) => r + (s.values[i] || 0));
    sums.push(running);
  }
  const bars = window.uPlot.paths.bars({ size: [0.8, 40] });
  // Drawn tallest first, so each shorter stack sits in front of the one it is part of.
  const order = series.map((_, i) => i).reverse();
  const opts = {
    width: Math.max(280, el.clientWidth || 600),
    height,
    scales: { x: { time: true } },
    axes: axes(yLabel, true),
    series: [{}, ...order.map((i) => ({
      label: series[i].label, fill: series[i].colour, stroke: series[i].colour, paths: bars, points: { show: false },
      value: (u, v, si, idx) => (idx == null ? '—' : `${series[i].values[idx] || 0}`),
    }))],
  };
  const plot = new window.uPlot(opts, [xs, ...order.map((i) => sums[i])], el);
  fit(el, plot);
  return plot;
}

function fit(el, plot) {
  const observer = new ResizeObserver(() => {
    const width = Math.max(280, el.clientWidth);
    if (Math.abs(width - plot.width) > 4) plot.setSize({ width, height: plot.height });
  });
  observer.observe(el);
}
