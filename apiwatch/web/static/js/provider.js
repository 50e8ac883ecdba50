// One provider: latency p50/p95 (roll-ups), outcomes over time (stacked), 90 daily bars,
// status timeline, recent failures with remediation, budget windows, keys (admin), SLO
// figures (objective, attainment, error budget, burn rates, poor-SLA flag), order books with
// their integrity checks (exchanges), latest data points with freshness and consensus
// deviation, the TLS certificate's days left. Live: status changes and attempts.
import { $, ago, api, esc, isAdmin, ms, needKey, pct, shell, showError, statusBadge, time, toast } from './common.js';
import { lineChart, OUTCOME_COLOURS, stackedBars } from './charts.js';
import { connectLive } from './live.js';
import { keyedReportLinks, sloPanel } from './slo-parts.js';
import { bookPanel } from './book-parts.js';

const main = $('#main');
const id = decodeURIComponent(location.pathname.split('/').filter(Boolean)[1] || '');
const BUCKETS = { '1h': '1h', '24h': '1h', '7d': '6h', '30d': '1d' };
let range = '24h';
let who;

const secs = (iso) => Date.parse(iso) / 1000;

async function drawLatency() {
  const el = $('#latency');
  const data = await api(`/api/charts/health-history?provider=${encodeURIComponent(id)}&range=${range}&bucket=${BUCKETS[range]}`);
  const points = new Map((data.series[0]?.points || []).map((p) => [p.t, p]));
  const xs = data.buckets.map(secs);
  const at = (key) => data.buckets.map((b) => points.get(b)?.[key] ?? null);
  lineChart(el, {
    xs,
    yLabel: 'latency (ms)',
    series: [
      { label: 'p50', values: at('p50_ms'), colour: '#0b72d9' },
      { label: 'p95', values: at('p95_ms'), colour: '#d9480f' },
    ],
  });
}

async function drawOutcomes() {
  const data = await api(`/api/providers/${encodeURIComponent(id)}/outcomes?range=${range}`);
  const step = data.bucket === 'day' ? 86400 : 3600;
  const now = Date.now() / 1000;
  const span = { '1h': 3600, '24h': 86400, '7d': 7 * 86400, '30d': 30 * 86400 }[range];
  const xs = [];
  for (let t = Math.floor((now - span) / step) * step; t <= now; t += step) xs.push(t);
  const outcomes = [...new Set(data.points.map((p) => p.outcome))].sort((a, b) => (a === 'ok' ? -1 : b === 'ok' ? 1 : a.localeCompare(b)));
  const table = new Map(data.points.map((p) => [`${secs(p.bucket_start)}|${p.outcome}`, p.count]));
  if (!outcomes.length) {
    $('#outcomes').innerHTML = '<p class="muted">No checks in this range.</p>';
    return;
  }
  stackedBars($('#outcomes'), {
    xs,
    yLabel: `${data.counted} per ${data.bucket}`,
    series: outcomes.map((o) => ({ label: o, colour: OUTCOME_COLOURS[o] || '#888', values: xs.map((x) => table.get(`${x}|${o}`) || 0) })),
  });
}

async function drawDays() {
  const data = await api(`/api/providers/${encodeURIComponent(id)}/daily?days=90`);
  const judged = data.days.filter((d) => d.uptime_pct != null);
  const mean = judged.length ? judged.reduce((a, d) => a + d.uptime_pct, 0) / judged.length : null;
  $('#days').innerHTML = `<div class="days" role="img" aria-label="daily uptime over 90 days; mean ${pct(mean, 3)}">
    ${data.days.map((d) => `<i class="l-${d.level}" title="${d.date}: ${d.uptime_pct == null ? 'no data' : d.uptime_pct + ' %'}"></i>`).join('')}</div>
    <div class="days-legend"><span>90 days ago</span><span>mean ${pct(mean, 3)}</span><span>today</span></div>`;
}

async function drawBudgets() {
  const el = $('#budgets');
  try {
    const data = await api(`/api/rate-limits?provider=${encodeURIComponent(id)}`);
    const blocked = data.blocked_until[id];
    el.innerHTML = (blocked ? `<p class="notice error">Blocked by the provider until ${time(blocked)}</p>` : '')
      + (data.windows.length ? `<div class="table-wrap" tabindex="0"><table><thead><tr><th>Window</th><th class="num">Used</th><th class="num">Limit</th><th class="num">Use</th><th>Resets</th><th>Exhausted at this pace</th><th>Source</th></tr></thead><tbody>
      ${data.windows.map((w) => `<tr><td>${esc(w.window)}</td><td class="num">${w.used}</td><td class="num">${w.limit}</td><td class="num">${w.percent.toFixed(1)} %</td>
        <td>${time(w.reset_at)}</td><td>${w.forecast_exhausted_at ? time(w.forecast_exhausted_at) : 'not before the reset'}</td><td>${esc(w.source)}</td></tr>`).join('')}
      </tbody></table></div>` : '<p class="muted">No rate-limit windows configured or reported.</p>');
  } catch (error) { showError(el, error); }
}

async function drawKeys() {
  const el = $('#keys');
  if (!isAdmin(who)) {
    el.innerHTML = '<p class="muted">Key pools are shown to admin keys.</p>';
    return;
  }
  const keys = (await api('/api/config/keys')).filter((k) => k.provider === id);
  if (!keys.length) {
    el.innerHTML = '<p class="muted">No key configured for this provider.</p>';
    return;
  }
  el.innerHTML = `<div class="table-wrap" tabindex="0"><table><thead><tr><th>Variable</th><th>Key</th><th>Status</th><th></th></tr></thead><tbody>
    ${keys.map((k) => `<tr><td class="mono">${esc(k.env_name)}</td><td class="mono">${esc(k.masked)}</td><td>${esc(k.status)}</td>
      <td><button type="button" data-test="${esc(k.env_name)}">Test</button></td></tr>`).join('')}</tbody></table></div>
    <p id="key-result" class="small" aria-live="polite"></p>`;
  el.addEventListener('click', async (event) => {
    const name = event.target.dataset?.test;
    if (!name) return;
    event.target.disabled = true;
    try {
      const [result] = await api('/api/config/keys/test', { method: 'POST', body: { provider: id, env_name: name } });
      $('#key-result').textContent = `${name}: ${result.outcome}${result.status_code ? ` (HTTP ${result.status_code})` : ''}, key is ${result.status}`;
      drawKeys();
    } catch (error) { $('#key-result').textContent = error.message; } finally { event.target.disabled = false; }
  });
}

async function drawFailures() {
  const data = await api('/api/logs?provider=' + encodeURIComponent(id) + '&limit=100');
  const failing = data.items.filter((r) => !['ok', 'slow', 'skipped'].includes(r.outcome)).slice(0, 15);
  const remedies = (await api('/api/failures?hours=24&recent=1')).remediation;
  $('#failures').innerHTML = failing.length ? `<div class="table-wrap" tabindex="0"><table><thead><tr><th>When</th><th>Endpoint</th><th>Outcome</th><th>Reason</th><th>What to do</th></tr></thead><tbody>
    ${failing.map((r) => `<tr><td>${ago(r.started_at)}</td><td>${esc(r.endpoint)}</td><td>${esc(r.outcome)}${r.status_code ? ` (${r.status_code})` : ''}</td>
      <td>${esc(r.reason)}</td><td class="small">${esc(remedies[r.outcome] || '')}</td></tr>`).join('')}</tbody></table></div>`
    : '<p class="muted">No failures among the last 100 attempts.</p>';
}

async function drawSlo() {
  const s = await api(`/api/slo/${encodeURIComponent(id)}`);
  const card = await api(`/api/scorecard?window=${s.objective.window_days}d`);
  $('#slo').innerHTML = sloPanel(s, card.providers.find((r) => r.provider === id));
}

// Only a provider with collected books shows the panel; it appears after its first one.
async function drawBooks() {
  const { books } = await api(`/api/data/books?provider=${encodeURIComponent(id)}`);
  $('#books-panel').hidden = !books.length;
  if (books.length) $('#books').innerHTML = bookPanel(books);
}

// A collection finishes as a burst of attempts (one per endpoint): redraw once after it.
let booksTimer;
function drawBooksSoon() {
  clearTimeout(booksTimer);
  booksTimer = setTimeout(() => drawBooks().catch((error) => toast(error.message)), 300);
}

async function drawData() {
  const [latest, fresh] = await Promise.all([api('/api/data/latest'), api('/api/freshness')]);
  const points = latest.points.filter((p) => p.provider === id);
  const freshness = new Map(fresh.items.filter((f) => f.provider === id).map((f) => [f.item, f]));
  $('#data').innerHTML = points.length ? `<div class="table-wrap" tabindex="0"><table><thead><tr><th>Item</th><th class="num">Value</th><th>Data time</th><th>Freshness</th><th class="num">Deviation from consensus</th></tr></thead><tbody>
    ${points.slice(0, 50).map((p) => {
      const f = freshness.get(p.item);
      const c = latest.consensus[p.item]?.providers?.[id];
      return `<tr><td>${esc(p.item.startsWith('news:') ? 'latest headline' : p.item)}</td><td class="num">${esc(p.value ?? p.text ?? '')}</td><td>${ago(p.data_time)}</td>
        <td>${f ? esc(f.status) : '—'}</td><td class="num">${c ? `${c.deviation_pct.toFixed(3)} %${c.divergent ? ' (divergent)' : ''}` : '—'}</td></tr>`;
    }).join('')}</tbody></table></div>` : '<p class="muted">No data points collected yet.</p>';
}

function drawTimeline(changes) {
  $('#timeline').innerHTML = changes.length ? `<ol class="timeline">${changes.map((c) =>
    `<li>${time(c.changed_at)}: ${statusBadge(c.old_status)} → ${statusBadge(c.new_status)} <span class="muted">${esc(c.reason)}</span></li>`).join('')}</ol>`
    : '<p class="muted">No status change recorded.</p>';
}

// The certificate's state as a word and a colour (the status badges' colours).
const CERT_STATES = {
  ok: ['online', 'valid'],
  warning: ['degraded', 'expires soon'],
  critical: ['offline', 'expires very soon'],
  invalid: ['offline', 'not valid'],
  unknown: ['unknown', 'unknown'],
};

function certificateLine(c) {
  if (!c) return '';
  const [colour, word] = CERT_STATES[c.state] || CERT_STATES.unknown;
  const days = c.days_left === null ? '—' : `${Math.floor(c.days_left)} days left`;
  const why = c.state === 'invalid' ? ` · ${esc(c.host_matches === false ? 'does not cover the host name' : c.error)}` : '';
  return `<p id="certificate">TLS certificate of ${esc(c.host)}:${c.port}: <b>${days}</b>
    <span class="status s-${colour}" data-state="${esc(c.state)}">${word}</span>
    <span class="muted">· until ${time(c.expires_at)} · ${esc(c.issuer)}${why}</span></p>`;
}

function drawHead(p) {
  $('#head').innerHTML = `<h1>${esc(p.name)} ${statusBadge(p.status)}</h1>
    <p>${esc(p.reason)} <span class="muted">· since ${time(p.status_since)} · last check ${ago(p.last_checked_at)}, ${ms(p.last_latency_ms)} · uptime 24 h ${pct(p.uptime_24h_pct)}
    · ${esc(p.category)}${p.enabled ? '' : ' · disabled'}</span></p>
    ${certificateLine(p.certificate)}
    ${isAdmin(who) ? '<p><button type="button" id="check-now" class="primary">Check now</button> <span id="check-result" class="small" aria-live="polite"></span></p>' : ''}`;
  $('#check-now')?.addEventListener('click', async (event) => {
    event.target.disabled = true;
    try {
      const ran = await api('/api/schedule/trigger', { method: 'POST', body: { provider: id } });
      $('#check-result').textContent = `${ran.ran} probe(s): now ${ran.statuses[id]?.status}`;
      await refresh();
    } catch (error) { $('#check-result').textContent = error.message; } finally { event.target.disabled = false; }
  });
}

async function refresh() {
  const p = await api(`/api/providers/${encodeURIComponent(id)}`);
  drawHead(p);
  drawTimeline(p.recent_changes);
  return p;
}

function rangeButtons() {
  return `<span class="range" role="group" aria-label="Time range">${Object.keys(BUCKETS).map((r) =>
    `<button type="button" data-range="${r}" aria-pressed="${r === range}">${r}</button>`).join('')}</span>`;
}

async function start() {
  who = await shell('');
  if (who.needsKey) return needKey(main, who);
  main.innerHTML = `<div id="head"></div>
    <p>${rangeButtons()}</p>
    <div class="grid2">
      <section class="panel"><h2>Latency p50 / p95</h2><div id="latency" class="chart"></div></section>
      <section class="panel"><h2>Checks by outcome</h2><div id="outcomes" class="chart"></div></section>
    </div>
    <section class="panel"><h2>Daily uptime, 90 days</h2><div id="days"></div></section>
    <section class="panel"><h2>Service level (SLO)</h2><div id="slo"></div></section>
    <div class="grid2">
      <section class="panel"><h2>Status timeline</h2><div id="timeline"></div></section>
      <section class="panel"><h2>Recent failures</h2><div id="failures"></div></section>
      <section class="panel"><h2>Budget windows</h2><div id="budgets"></div></section>
      <section class="panel"><h2>Keys</h2><div id="keys"></div></section>
    </div>
    <section class="panel" id="books-panel" hidden><h2>Order book</h2><div id="books"></div></section>
    <section class="panel"><h2>Latest data points</h2><div id="data"></div></section>`;
  try {
    const p = await refresh();
    document.title = `${p.name} · apiwatch`;
  } catch (error) {
    return showError(main, error);
  }
  keyedReportLinks(main);
  main.addEventListener('click', (event) => {
    const r = event.target.dataset?.range;
    if (!r) return;
    range = r;
    for (const b of document.querySelectorAll('[data-range]')) b.setAttribute('aria-pressed', String(b.dataset.range === r));
    drawLatency();
    drawOutcomes();
  });
  await Promise.all([drawLatency(), drawOutcomes(), drawDays(), drawBudgets(), drawKeys(), drawFailures(), drawData(), drawSlo(), drawBooks()]
    .map((p) => p.catch((error) => toast(error.message))));
  document.body.dataset.ready = 'true';
  connectLive({
    types: ['provider_status_change', 'new_log_entry', 'rate_limit_alert', 'ping'],
    providers: [id],
    onMessage: ({ type, data }) => {
      if (!data || data.provider !== id) return;
      if (type === 'provider_status_change') { toast(`${id}: ${data.from} → ${data.to}`); refresh(); }
      if (type === 'rate_limit_alert') { toast(`${data.percent} % of the ${data.window} budget used`); drawBudgets(); }
      if (type === 'new_log_entry' && data.final !== false && !['ok', 'slow'].includes(data.outcome)) drawFailures();
      // Books are judged before their attempt is published, so the API has them by now.
      if (type === 'new_log_entry' && data.final !== false) drawBooksSoon();
    },
  });
}

start();
