// The overview: one card per provider, grouped by category, from one GET /api/overview;
// kept current by the live feed (status changes, attempts, budget warnings, alerts) and a
// full refresh every minute for the sparklines and uptime.
import { $, ago, api, esc, ms, needKey, pct, seconds, shell, showError, statusBadge, toast, until } from './common.js';
import { sparkline } from './charts.js';
import { connectLive } from './live.js';

export const CATEGORIES = {
  market_data: 'Market data',
  blockchain_explorers: 'Blockchain explorers',
  news: 'News',
  sentiment: 'Sentiment',
  onchain: 'On-chain',
};
const STATUSES = ['online', 'degraded', 'offline', 'unknown'];
const HEARTBEATS = 20;

const main = $('#main');
const model = new Map(); // id → provider card data
const cards = new Map(); // id → element
let summary = null;
let pending = new Map(); // id → flash?
let scheduled = false;

function budgetHtml(b, blockedUntil) {
  if (blockedUntil) return `<dt>Budget</dt><dd class="s-offline">blocked until ${esc(new Date(blockedUntil).toLocaleTimeString())}</dd>`;
  if (!b) return '<dt>Budget</dt><dd>no limit</dd>';
  const level = b.percent >= 100 ? 'full' : b.percent >= 80 ? 'warn' : '';
  const forecast = b.forecast_exhausted_at ? ` · runs out ${until(b.forecast_exhausted_at)}` : '';
  return `<dt>Budget (${esc(b.window)})</dt><dd>${b.used}/${b.limit}${forecast}</dd>
    <dd style="grid-column: 1 / -1"><div class="meter" role="img" aria-label="${b.percent} % of the ${esc(b.window)} budget used"><b class="${level}" style="width:${Math.min(100, b.percent)}%"></b></div></dd>`;
}

function freshnessText(f) {
  if (!f) return 'no data items';
  const age = f.age_s == null ? '' : `, oldest ${seconds(f.age_s)}`;
  return `${f.status}${age}`;
}

// A failing book check is bad data behind a 200 OK: said on the data line, in words.
function booksText(checks) {
  return checks?.length ? ` <span class="book-failing s-offline">· book: ${esc(checks.join(', '))}</span>` : '';
}

function cardHtml(p) {
  const recent = p.heartbeat.slice(-HEARTBEATS);
  const beats = '<i></i>'.repeat(HEARTBEATS - recent.length) + recent.map((b) =>
    `<i class="o-${esc(b.outcome)}" title="${esc(b.outcome)} ${b.latency_ms == null ? '' : Math.round(b.latency_ms) + ' ms'} at ${esc(new Date(b.at).toLocaleTimeString())}"></i>`).join('');
  return `<article class="card s-${esc(p.status)}${p.enabled ? '' : ' disabled'}" data-id="${esc(p.id)}" data-status="${esc(p.status)}" data-category="${esc(p.category)}">
    <div class="head"><a href="/providers/${encodeURIComponent(p.id)}">${esc(p.name)}</a>${statusBadge(p.status)}</div>
    <div class="why" title="${esc(p.reason)}">${p.enabled ? esc(p.reason) : 'disabled in the catalogue'}</div>
    ${sparkline(p.latency_24h_ms, `${p.name} mean latency per hour over 24 h`)}
    <div class="beats" role="img" aria-label="last ${p.heartbeat.length} results: ${p.heartbeat.filter((b) => b.outcome === 'ok').length} ok">${beats}</div>
    <dl class="facts">
      <dt>Last latency</dt><dd>${ms(p.last_latency_ms)}</dd>
      <dt>Uptime 24 h</dt><dd>${pct(p.uptime_24h_pct)}</dd>
      <dt>Checked</dt><dd>${ago(p.last_checked_at)}</dd>
      <dt>Breaker</dt><dd>${esc(p.breaker ?? '—')}</dd>
      <dt>Data</dt><dd>${esc(freshnessText(p.freshness))}${booksText(p.books_failing)}</dd>
      ${budgetHtml(p.budget, p.blocked_until)}
    </dl>
  </article>`;
}

function renderSummary() {
  const counts = { online: 0, degraded: 0, offline: 0, unknown: 0 };
  for (const p of model.values()) if (p.enabled) counts[p.status] += 1;
  const known = counts.online + counts.degraded + counts.offline;
  const score = known ? ((100 * counts.online + 50 * counts.degraded) / known).toFixed(1) : '—';
  $('#summary').innerHTML = `
    <div class="figure"><b>${score}</b><span>health score</span></div>
    ${STATUSES.map((s) => `<div class="figure"><b class="s-${s}">${counts[s]}</b><span>${s}</span></div>`).join('')}
    <div class="figure"><b>${summary.alerts_firing}</b><span><a href="/alerts">alerts firing</a></span></div>
    <div class="figure"><b>${summary.providers_enabled}/${summary.providers_total}</b><span>providers enabled</span></div>
    <div class="figure"><b id="updated">${ago(summary.generated_at)}</b><span>data as of</span></div>`;
}

function renderAll() {
  const groups = {};
  for (const p of model.values()) (groups[p.category] ||= []).push(p);
  const html = Object.keys(groups).sort().map((cat) =>
    `<section class="group" data-category="${esc(cat)}" aria-labelledby="g-${esc(cat)}">
      <h2 id="g-${esc(cat)}">${esc(CATEGORIES[cat] || cat)} <span class="muted small">(${groups[cat].length})</span></h2>
      <div class="cards">${groups[cat].map(cardHtml).join('')}</div></section>`).join('');
  $('#groups').innerHTML = html || '<p class="notice">No providers in the catalogue.</p>';
  cards.clear();
  for (const el of document.querySelectorAll('.card')) cards.set(el.dataset.id, el);
  renderSummary();
  applyFilters();
}

function replaceCard(id, flash) {
  const old = cards.get(id);
  const p = model.get(id);
  if (!old || !p) return;
  const tpl = document.createElement('template');
  tpl.innerHTML = cardHtml(p);
  const fresh = tpl.content.firstElementChild;
  if (flash) fresh.classList.add('flash');
  fresh.hidden = !matches(p);
  old.replaceWith(fresh);
  cards.set(id, fresh);
}

function matches(p) {
  const q = $('#search').value.trim().toLowerCase();
  const cat = $('#category').value;
  const status = $('#status').value;
  return (!q || p.id.includes(q) || p.name.toLowerCase().includes(q) || p.reason.toLowerCase().includes(q))
    && (!cat || p.category === cat) && (!status || p.status === status);
}

function applyFilters() {
  let shown = 0;
  for (const [id, el] of cards) {
    const ok = matches(model.get(id));
    el.hidden = !ok;
    shown += ok;
  }
  for (const section of document.querySelectorAll('.group')) {
    section.hidden = !section.querySelector('.card:not([hidden])');
  }
  $('#shown').textContent = `${shown} of ${model.size} shown`;
}

// Live messages land here; cards are redrawn at most once per frame.
function touch(id, flash = false) {
  pending.set(id, flash || pending.get(id) || false);
  if (!scheduled) {
    scheduled = true;
    requestAnimationFrame(flush);
  }
}

function flush() {
  const batch = pending;
  pending = new Map();
  scheduled = false;
  for (const [id, flash] of batch) replaceCard(id, flash);
  renderSummary();
}

function onMessage({ type, data }) {
  if (!data || !summary) return;
  const p = model.get(data.provider);
  if (type === 'provider_status_change' && p) {
    p.status = data.to;
    p.reason = data.reason;
    p.status_since = data.at;
    touch(p.id, true);
  } else if (type === 'new_log_entry' && p && data.final !== false) {
    p.heartbeat = [...p.heartbeat, { outcome: data.outcome, at: data.started_at, latency_ms: data.latency_ms }].slice(-HEARTBEATS);
    if (data.latency_ms != null) p.last_latency_ms = data.latency_ms;
    p.last_outcome = data.outcome;
    p.last_checked_at = data.started_at;
    touch(p.id);
  } else if (type === 'rate_limit_alert' && p) {
    p.budget = { ...(p.budget || {}), window: data.window, used: data.used, limit: data.limit, percent: data.percent, reset_at: data.reset_at };
    touch(p.id, true);
    toast(`${p.name}: ${data.percent} % of the ${data.window} budget used`);
  } else if (type === 'status_update') {
    // The periodic snapshot: catches up with any change a reconnect missed.
    for (const entry of data.providers || []) {
      const q = model.get(entry.id);
      if (!q || q.status === entry.status) continue;
      // A snapshot older than the change this card already shows must not undo it (one
      // process's snapshot can lag a change another process announced; no date, no change seen).
      if (q.status_since && (!entry.changed_at || Date.parse(entry.changed_at) < Date.parse(q.status_since))) continue;
      q.status = entry.status;
      q.reason = entry.reason;
      q.status_since = entry.changed_at;
      touch(q.id, true);
    }
  } else if (type === 'alert') {
    toast(`Alert ${data.state || ''}: ${data.rule || ''} ${data.provider ? `(${data.provider})` : ''}`);
    refreshSoon();
  }
}

let refreshTimer;
function refreshSoon() {
  clearTimeout(refreshTimer);
  // A failed refresh (the server restarting) waits for the next message or reconnect.
  refreshTimer = setTimeout(() => load().catch(() => {}), 1000);
}

async function load() {
  const data = await api('/api/overview');
  summary = data;
  const first = model.size === 0;
  model.clear();
  for (const p of data.providers) model.set(p.id, p);
  if (first) renderAll();
  else {
    for (const id of model.keys()) replaceCard(id, false);
    renderSummary();
    applyFilters();
  }
}

async function start() {
  const who = await shell('/');
  if (who.needsKey) return needKey(main, who);
  main.innerHTML = `
    <h1>Providers</h1>
    <div class="summary" id="summary" aria-label="Counts by status"></div>
    <form class="filters" role="search" onsubmit="return false">
      <label>Search <input id="search" type="search" placeholder="name, id or reason"></label>
      <label>Category <select id="category"><option value="">all</option>
        ${Object.entries(CATEGORIES).map(([v, l]) => `<option value="${v}">${l}</option>`).join('')}</select></label>
      <label>Status <select id="status"><option value="">all</option>
        ${STATUSES.map((s) => `<option>${s}</option>`).join('')}</select></label>
      <span class="muted small" id="shown" aria-live="polite"></span>
    </form>
    <div id="groups"></div>`;
  for (const id of ['#search', '#category', '#status']) $(id).addEventListener('input', applyFilters);
  try {
    await load();
  } catch (error) {
    return showError(main, error);
  }
  document.body.dataset.ready = 'true';
  performance.mark('apiwatch:ready'); // bench/dashboard_speed.py reads it
  connectLive({
    types: ['status_update', 'provider_status_change', 'new_log_entry', 'rate_limit_alert', 'alert', 'ping'],
    onMessage,
    onOpen: () => { if (document.body.dataset.ready) refreshSoon(); },
  });
  setInterval(() => load().catch(() => {}), 60_000);
  setInterval(() => { const el = $('#updated'); if (el) el.textContent = ago(summary.generated_at); }, 5_000);
}

start();
