// Inbound API: requests per key and per route from the roll-ups, the signed-in key's use of
// its minute, hour and day windows (the limiter's own counts, from the X-RateLimit headers),
// each key's last hour and 24 h against its limits (admin keys see names and limits), and
// refused requests by reason (admin). Live: no feed message concerns inbound usage, so while
// /ws/live is up (pings only) the page redraws every REFRESH_MS, and once on a reconnect.
import { stackedBars } from './charts.js';
import { $, api, esc, isAdmin, ms, needKey, pct, rateLimitNow, seconds, shell, showError } from './common.js';
import { connectLive } from './live.js';

// Each redraw costs the key 3 to 5 requests of its own limits: twice a minute is plenty.
const REFRESH_MS = 30_000;
const WINDOWS = [['minute', 'Minute'], ['hour', 'Hour'], ['day', 'Day']];

const main = $('#main');
let who;
let range = '24h';

// The middleware's refusal reasons, in words, each with its colour in the chart.
const REASONS = {
  missing_key: ['No key sent', '#6e7781'],
  invalid_key: ['Unknown key', '#cf222e'],
  inactive_key: ['Inactive or revoked key', '#bc4c00'],
  admin_required: ['Read key on an admin route', '#8250df'],
  rate_limited_minute: ['Over its minute limit', '#d4a72c'],
  rate_limited_hour: ['Over its hour limit', '#bf8700'],
  rate_limited_day: ['Over its day limit', '#9a6700'],
  failed_auth_throttled: ['Address throttled after failed keys', '#a40e26'],
  limiter_unavailable: ['Rate limiter unavailable', '#0b72d9'],
  unknown: ['Not recorded (counted before reasons were kept)', '#8c959f'],
};
const reasonName = (r) => (REASONS[r] || [r])[0];

function byKey(items) {
  const out = new Map();
  for (const it of items) {
    const k = it.key_id ?? 'none';
    const e = out.get(k) || { requests: 0, errors: 0 };
    e.requests += it.requests;
    e.errors += it.errors;
    out.set(k, e);
  }
  return out;
}

async function draw() {
  const [data, hour, day] = await Promise.all([
    api(`/api/usage?range=${range}`), api('/api/usage?range=1h'), api('/api/usage?range=24h'),
  ]);
  const keys = isAdmin(who) ? (await api('/api/keys')).keys : [];
  const names = new Map(keys.map((k) => [k.id, k]));
  const label = (id) => (id == null ? '<i>no key</i>' : esc(names.get(id)?.name ? `${names.get(id).name} (#${id})` : `key #${id}`));
  const t = data.total;
  $('#totals').innerHTML = `<div class="figure"><b>${t.requests}</b><span>requests</span></div>
    <div class="figure"><b>${t.errors}</b><span>errors (status ≥ 400)</span></div>
    <div class="figure"><b>${pct(t.success_rate == null ? null : 100 * t.success_rate)}</b><span>success</span></div>
    <div class="figure"><b>${ms(t.p50_ms)}</b><span>p50</span></div><div class="figure"><b>${ms(t.p95_ms)}</b><span>p95</span></div>`;
  const perKey = byKey(data.items);
  $('#per-key').innerHTML = `<div class="table-wrap" tabindex="0"><table><thead><tr><th>Key</th><th class="num">Requests</th><th class="num">Errors</th></tr></thead><tbody>
    ${[...perKey].sort((a, b) => b[1].requests - a[1].requests).map(([k, e]) => `<tr><td>${label(k === 'none' ? null : k)}</td><td class="num">${e.requests}</td><td class="num">${e.errors}</td></tr>`).join('')
      || '<tr><td colspan="3" class="muted">No requests in this range.</td></tr>'}</tbody></table></div>`;
  $('#per-route').innerHTML = `<div class="table-wrap" tabindex="0"><table><thead><tr><th>Route</th><th>Key</th><th class="num">Requests</th><th class="num">Errors</th><th class="num">p50</th><th class="num">p95</th></tr></thead><tbody>
    ${data.items.slice(0, 200).map((it) => `<tr><td class="mono">${esc(it.route)}</td><td>${label(it.key_id)}</td><td class="num">${it.requests}</td><td class="num">${it.errors}</td>
      <td class="num">${ms(it.p50_ms)}</td><td class="num">${ms(it.p95_ms)}</td></tr>`).join('') || '<tr><td colspan="6" class="muted">No requests in this range.</td></tr>'}</tbody></table></div>`;
  const h = byKey(hour.items);
  const d = byKey(day.items);
  $('#limits').innerHTML = isAdmin(who) ? `<div class="table-wrap" tabindex="0"><table><thead><tr><th>Key</th><th>Scope</th><th>Active</th><th class="num">Minute limit</th><th class="num">Last hour / hour limit</th><th class="num">Last 24 h / day limit</th><th class="num">Total</th></tr></thead><tbody>
    ${keys.map((k) => `<tr><td>${esc(k.name)} <span class="mono muted">${esc(k.key)}</span></td><td>${esc(k.scope)}</td><td>${k.active ? 'yes' : 'no'}</td>
      <td class="num">${k.minute_limit ?? 'default'}</td><td class="num">${h.get(k.id)?.requests || 0} / ${k.hour_limit ?? 'default'}</td><td class="num">${d.get(k.id)?.requests || 0} / ${k.day_limit ?? 'default'}</td><td class="num">${k.usage_count}</td></tr>`).join('')}
    </tbody></table></div>` : '<p class="muted">Key names and limits are shown to admin keys.</p>';
  await drawRefused();
  drawOwnLimits();
}

// Read after the page's calls: the figures include them, as the next response's headers would.
function drawOwnLimits() {
  const now = rateLimitNow();
  if (!now) {
    $('#own-limits').innerHTML = '<p class="muted">Sign in with a key to see its use of its limits.</p>';
    return;
  }
  $('#own-limits').innerHTML = `<div class="table-wrap" tabindex="0"><table id="own-windows"><thead><tr><th>Window</th><th class="num">Used</th><th class="num">Limit</th><th class="num">Use</th><th class="num">Resets in</th></tr></thead><tbody>
    ${WINDOWS.map(([w, label]) => {
      const { limit, remaining, reset_s: reset } = now[w];
      const used = limit - remaining;
      return `<tr data-window="${w}"><td>${label}</td><td class="num" data-used>${used}</td><td class="num" data-limit>${limit}</td>
        <td class="num">${limit ? pct((100 * used) / limit, 1) : '—'}</td><td class="num">${seconds(reset)}</td></tr>`;
    }).join('')}</tbody></table></div>`;
}

async function drawRefused() {
  if (!isAdmin(who)) {
    $('#refused').innerHTML = '<p class="muted">Refused requests are shown to admin keys.</p>';
    return;
  }
  const data = await api(`/api/usage/refusals?range=${range}`);
  if (!data.total) {
    $('#refused').innerHTML = '<p class="muted">No request was refused in this range.</p>';
    return;
  }
  const rows = data.by_reason.map((r) => `<tr data-reason="${esc(r.reason)}"><td>${esc(reasonName(r.reason))} <span class="mono muted">${esc(r.reason)}</span></td>
    <td class="num">${r.status}</td><td class="num">${r.count}</td><td class="num">${pct((100 * r.count) / data.total, 1)}</td></tr>`).join('');
  $('#refused').innerHTML = `<div class="table-wrap" tabindex="0"><table id="refused-reasons"><thead><tr><th>Reason</th><th class="num">Status</th><th class="num">Refused</th><th class="num">Share</th></tr></thead>
    <tbody>${rows}</tbody><tfoot><tr><td><b>Total</b></td><td></td><td class="num"><b>${data.total}</b></td><td></td></tr></tfoot></table></div>
    <h3 class="small">Refused per ${esc(data.bucket)}, stacked by reason</h3><div id="refused-chart" class="chart"></div>
    <p class="small">Networks refused most: ${data.networks.map((n) => `<span class="mono">${esc(n.client_prefix)}</span> (${n.count})`).join(', ')}</p>`;
  const step = data.bucket === 'minute' ? 60 : 3600;
  const xs = [];
  for (let t = Date.parse(data.start) / 1000; t < Date.parse(data.end) / 1000; t += step) xs.push(t);
  const counts = new Map(data.series.map((p) => [`${Date.parse(p.t) / 1000}|${p.reason}`, p.count]));
  stackedBars($('#refused-chart'), {
    xs,
    height: 200,
    yLabel: `refused per ${data.bucket}`,
    series: data.by_reason.map((r) => ({
      label: reasonName(r.reason), colour: (REASONS[r.reason] || [0, '#888'])[1],
      values: xs.map((x) => counts.get(`${x}|${r.reason}`) || 0),
    })),
  });
}

async function start() {
  who = await shell('/usage');
  if (who.needsKey) return needKey(main, who);
  main.innerHTML = `<h1>Inbound API</h1>
    <p><label>Range <select id="range"><option>1h</option><option selected>24h</option><option>7d</option><option>30d</option></select></label></p>
    <div class="summary" id="totals"></div>
    <div class="grid2"><section class="panel"><h2>Per key</h2><div id="per-key"></div></section>
    <section class="panel"><h2>Limit use per key</h2><div id="limits"></div>
    <p class="small muted">From the hourly roll-ups; a key's use of its current minute is known only to the limiter (below, for this key).</p></section></div>
    <section class="panel"><h2>This key's limits now</h2><div id="own-limits"></div>
    <p class="small muted">The limiter's fixed windows (the minute from :00, the day from 00:00 UTC), as its last response reported them, this page's own requests included.</p></section>
    <section class="panel"><h2>Per route</h2><div id="per-route"></div></section>
    <section class="panel"><h2>Refused before reaching the API, by reason</h2><div id="refused"></div>
    <p class="small muted">Counted per minute, reason and client network (IPv4 /24, IPv6 /48), not stored one by one, and not part of the figures above; the current minute is this server's own count.</p></section>`;
  $('#range').addEventListener('change', (event) => { range = event.target.value; draw().catch((e) => showError($('#totals'), e)); });
  try { await draw(); } catch (error) { return showError(main, error); }
  document.body.dataset.ready = 'true';
  let connected = false;
  connectLive({
    types: ['ping'],
    onMessage: () => {},
    // A reconnect may have missed a while: catch up once (the first connection follows a fresh load).
    onOpen: () => { if (connected) redraw(); connected = true; },
  });
  setInterval(() => { if ($('#live')?.dataset.state === 'live') redraw(); }, REFRESH_MS);
}

let drawing = false;
async function redraw() {
  if (drawing) return;
  drawing = true;
  try { await draw(); } catch { /* the next tick or reconnect tries again */ }
  drawing = false;
}

start();
