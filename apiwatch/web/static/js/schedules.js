// Schedules and data: every collection schedule (interval editing for admin keys), the
// compliance chart per category and one for the schedule chosen in the table, late and
// skipped counts by reason, and the consensus table per asset. Live: each finished check or collection (`new_log_entry`) redraws the
// schedules and the consensus, coalesced so a busy feed costs one redraw every few seconds.
import { $, ago, api, esc, isAdmin, needKey, pct, seconds, shell, showError, time, toast } from './common.js';
import { CATEGORY_COLOURS, lineChart } from './charts.js';
import { connectLive } from './live.js';

// The first result redraws soon; more within the cooldown wait for one redraw after it
// (GET /api/schedule reads 24 h of compliance: not something to run per message).
const FIRST_MS = 300;
const COOLDOWN_MS = 3_000;

const main = $('#main');
let who;
let chosen = null; // the provider whose schedule's compliance is charted

async function drawSchedules() {
  const { schedules } = await api('/api/schedule');
  chosen ??= schedules[0]?.provider ?? null;
  const admin = isAdmin(who);
  $('#schedules').innerHTML = schedules.length ? `<div class="table-wrap" tabindex="0"><table><thead><tr><th>Provider</th><th>Category</th><th class="num">Interval</th><th>Next run</th><th>Last run</th>
    <th class="num">Compliance 24 h</th><th class="num">On time</th><th class="num">Late</th><th class="num">Skipped</th><th>Skip reasons</th><th>7 days</th>${admin ? '<th>Change</th>' : ''}</tr></thead><tbody>
    ${schedules.map((s) => {
      const c = s.compliance_24h;
      const reasons = Object.entries(c.skip_reasons || {}).map(([r, n]) => `${esc(r)}: ${n}`).join(', ') || '—';
      const adaptive = s.effective_interval_s && s.effective_interval_s !== s.interval_s ? `<br><span class="small muted">now ${seconds(s.effective_interval_s)} ${esc(s.adaptive_reason)}</span>` : '';
      return `<tr><td><a href="/providers/${encodeURIComponent(s.provider)}">${esc(s.provider)}</a></td><td>${esc(s.category)}</td>
        <td class="num">${seconds(s.interval_s)}${adaptive}${s.enabled ? '' : '<br><span class="small muted">disabled</span>'}</td>
        <td>${s.next_run ? time(s.next_run) : '—'}</td><td>${s.last_run ? `${esc(s.last_run.result)} ${ago(s.last_run.planned_at)}` : '—'}</td>
        <td class="num">${pct(c.compliance_pct)}</td><td class="num">${c.on_time}</td><td class="num">${c.late}</td><td class="num">${c.skipped}</td><td class="small">${reasons}</td>
        <td><button type="button" data-compliance="${esc(s.provider)}"${s.provider === chosen ? ' aria-pressed="true"' : ' aria-pressed="false"'}>Chart<span class="visually-hidden"> ${esc(s.provider)}</span></button></td>
        ${admin ? `<td><form class="inline" data-schedule="${s.id}"><label class="visually-hidden" for="iv-${s.id}">Interval in seconds for ${esc(s.provider)}</label>
          <input id="iv-${s.id}" name="interval" type="number" min="1" max="604800" step="1" value="${Math.round(s.interval_s)}" style="width:7rem"> <button type="submit">Save</button></form></td>` : ''}</tr>`;
    }).join('')}</tbody></table></div>` : '<p class="muted">No collection schedules.</p>';
}

async function drawCompliance() {
  const data = await api('/api/charts/compliance?range=7d&bucket=hour');
  const xs = data.buckets.map((b) => Date.parse(b) / 1000);
  if (!data.series.length) {
    $('#compliance').innerHTML = '<p class="muted">No planned runs in the last 7 days.</p>';
    return;
  }
  lineChart($('#compliance'), {
    xs,
    yLabel: 'on time (%)',
    series: data.series.map((s) => {
      const at = new Map(s.points.map((p) => [p.t, p.compliance_pct]));
      return { label: s.category, colour: CATEGORY_COLOURS[s.category] || '#888', values: data.buckets.map((b) => at.get(b) ?? null) };
    }),
  });
}

// One schedule's compliance per day over 7 days (hours would leave a slow schedule a few
// isolated dots), with the week's totals in words.
async function drawChosen() {
  if (!chosen) return;
  const data = await api(`/api/charts/compliance?range=7d&bucket=day&provider=${encodeURIComponent(chosen)}`);
  const points = data.series.flatMap((s) => s.points);
  const sum = (f) => points.reduce((n, p) => n + p[f], 0);
  const planned = sum('planned');
  const onTime = sum('on_time');
  $('#chosen-title').textContent = `Compliance of ${chosen}, 7 days`;
  $('#chosen-figure').innerHTML = planned
    ? `<span data-planned="${planned}" data-on-time="${onTime}"><b>${pct((100 * onTime) / planned)}</b> on time: ${onTime} of ${planned} planned runs, ${sum('late')} late, ${sum('skipped')} skipped</span>`
    : '<span data-planned="0">No planned runs in the last 7 days.</span>';
  if (!planned) { $('#chosen-chart').replaceChildren(); return; }
  const at = new Map(points.map((p) => [p.t, p.compliance_pct]));
  lineChart($('#chosen-chart'), {
    xs: data.buckets.map((b) => Date.parse(b) / 1000),
    height: 180,
    yLabel: 'on time per day (%)',
    series: [{ label: chosen, colour: CATEGORY_COLOURS[data.series[0]?.category] || '#888', values: data.buckets.map((b) => at.get(b) ?? null) }],
  });
}

function onClick(event) {
  const button = event.target.closest('[data-compliance]');
  if (!button) return;
  chosen = button.dataset.compliance;
  for (const b of main.querySelectorAll('[data-compliance]')) b.setAttribute('aria-pressed', String(b === button));
  drawChosen().catch((error) => showError($('#chosen-figure'), error));
}

async function drawConsensus() {
  const { consensus } = await api('/api/data/latest');
  const items = Object.entries(consensus);
  $('#consensus').innerHTML = items.length ? `<div class="table-wrap" tabindex="0"><table><thead><tr><th>Asset</th><th class="num">Median</th><th class="num">Threshold</th><th>Providers (deviation)</th><th>Divergent</th></tr></thead><tbody>
    ${items.map(([name, c]) => `<tr><td>${esc(name)}</td><td class="num">${esc(c.median)}</td><td class="num">${c.threshold_pct} %</td>
      <td class="small">${Object.entries(c.providers).map(([p, v]) => `${esc(p)} ${esc(v.value)} (${v.deviation_pct.toFixed(3)} %${v.divergent ? ', divergent' : ''})`).join('<br>')}</td>
      <td>${c.divergent.length ? `<span class="status s-degraded">${c.divergent.map(esc).join(', ')}</span>` : 'none'}</td></tr>`).join('')}</tbody></table></div>`
    : '<p class="muted">No asset is reported by two or more providers yet.</p>';
}

async function onSubmit(event) {
  const form = event.target;
  if (!form.dataset.schedule) return;
  event.preventDefault();
  const interval = Number(new FormData(form).get('interval'));
  try {
    await api(`/api/schedule/${form.dataset.schedule}`, { method: 'PUT', body: { interval_s: interval } });
    toast(`Interval set to ${seconds(interval)}`);
    await drawSchedules();
  } catch (error) { toast(error.message); }
}

let redrawTimer = null;
let lastRedraw = 0;
function redrawSoon() {
  if (redrawTimer) return;
  const wait = Math.max(FIRST_MS, lastRedraw + COOLDOWN_MS - Date.now());
  redrawTimer = setTimeout(async () => {
    lastRedraw = Date.now();
    // Redrawing the table would throw away an interval being typed: that waits.
    const editing = $('#schedules').contains(document.activeElement) && document.activeElement.tagName === 'INPUT';
    try {
      // Not the 7-day hourly chart: one more run does not move it visibly.
      await Promise.all([editing ? null : drawSchedules(), drawConsensus()]);
    } catch { /* the next message or the reconnect tries again */ }
    redrawTimer = null;
    if (editing) $('#schedules').addEventListener('focusout', redrawSoon, { once: true });
  }, wait);
}

async function start() {
  who = await shell('/schedules');
  if (who.needsKey) return needKey(main, who);
  main.innerHTML = `<h1>Schedules and data</h1>
    <section><h2>Collection schedules</h2><div id="schedules"></div></section>
    <section class="panel" id="chosen"><h2 id="chosen-title">Compliance of one schedule, 7 days</h2>
      <p id="chosen-figure" class="small">Choose a schedule's <i>Chart</i> in the table.</p><div id="chosen-chart" class="chart"></div></section>
    <section class="panel"><h2>Compliance per category, 7 days</h2><div id="compliance" class="chart"></div></section>
    <section><h2>Consensus per asset</h2><div id="consensus"></div></section>`;
  main.addEventListener('submit', onSubmit);
  main.addEventListener('click', onClick);
  try {
    // The first schedule is charted until another is chosen: the table names it.
    await Promise.all([drawSchedules().then(drawChosen), drawCompliance(), drawConsensus()]);
  } catch (error) { return showError(main, error); }
  document.body.dataset.ready = 'true';
  let connected = false;
  connectLive({
    types: ['new_log_entry', 'ping'],
    onMessage: ({ type, data }) => {
      if (type === 'new_log_entry' && data && data.final !== false) redrawSoon();
    },
    // A reconnect may have missed runs: catch up once (the first connection follows a fresh load).
    onOpen: () => { if (connected) redrawSoon(); connected = true; },
  });
}

start();
