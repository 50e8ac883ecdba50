// Alerts: the firing ones (acknowledge, triage report), the history, and silences (create
// with matchers and a duration, delete: admin keys). Live: alert messages redraw the lists.
import { $, ago, api, esc, hasKey, isAdmin, needKey, shell, showError, time, toast } from './common.js';
import { connectLive } from './live.js';

const main = $('#main');
let who;

const severityBadge = (s) => `<span class="status ${s === 'critical' ? 's-offline' : s === 'warning' ? 's-degraded' : 's-unknown'}">${esc(s)}</span>`;

function alertRow(a, { active }) {
  const acked = a.acknowledged_at ? `acknowledged by ${esc(a.acknowledged_by)} ${ago(a.acknowledged_at)}` : '';
  const actions = active && !a.acknowledged_at && hasKey(who)
    ? `<button type="button" data-ack="${a.id}">Acknowledge</button>` : `<span class="small muted">${acked}</span>`;
  return `<tr data-alert="${a.id}"><td>${severityBadge(a.severity)}</td><td>${esc(a.rule)}</td><td>${a.provider ? `<a href="/providers/${encodeURIComponent(a.provider)}">${esc(a.provider)}</a>` : '—'}</td>
    <td>${esc(a.message)}</td><td>${active ? ago(a.fired_at) : `${time(a.fired_at)}${a.resolved_at ? `<br><span class="small muted">resolved ${time(a.resolved_at)}</span>` : ''}`}</td>
    <td>${esc(a.state)}</td><td>${actions} <button type="button" data-report="${a.id}">Report</button></td></tr>`;
}

function table(rows, opts) {
  if (!rows.length) return `<p class="muted">${opts.active ? 'No alert is firing.' : 'No alert in the last 7 days.'}</p>`;
  return `<div class="table-wrap" tabindex="0"><table><thead><tr><th>Severity</th><th>Rule</th><th>Provider</th><th>Message</th><th>Fired</th><th>State</th><th>Actions</th></tr></thead>
    <tbody>${rows.map((a) => alertRow(a, opts)).join('')}</tbody></table></div>`;
}

async function drawAlerts() {
  const [active, history] = await Promise.all([api('/api/alerts'), api('/api/alerts/history?limit=50')]);
  $('#active').innerHTML = table(active.alerts, { active: true });
  $('#history').innerHTML = table(history.alerts, { active: false });
}

async function drawSilences() {
  const { silences } = await api('/api/silences');
  $('#silences').innerHTML = silences.length ? `<div class="table-wrap" tabindex="0"><table><thead><tr><th>Matchers</th><th>From</th><th>Until</th><th>By</th><th>Comment</th><th>State</th>${isAdmin(who) ? '<th></th>' : ''}</tr></thead><tbody>
    ${silences.map((s) => `<tr><td class="mono">${esc(Object.entries(s.matchers).map(([k, v]) => `${k}=${v}`).join(', '))}</td><td>${time(s.starts_at)}</td><td>${time(s.ends_at)}</td>
      <td>${esc(s.created_by)}</td><td>${esc(s.comment)}</td><td>${s.active ? 'active' : 'inactive'}</td>
      ${isAdmin(who) ? `<td><button type="button" data-unsilence="${s.id}">Delete</button></td>` : ''}</tr>`).join('')}</tbody></table></div>`
    : '<p class="muted">No silences.</p>';
}

function silenceForm() {
  if (!isAdmin(who)) return '<p class="muted small">Creating and deleting silences needs an admin key.</p>';
  return `<form class="inline" id="silence-form">
    <label>Provider <input name="provider" placeholder="e.g. binance"></label>
    <label>Rule <input name="rule" placeholder="e.g. provider_offline"></label>
    <label>Severity <select name="severity"><option value="">any</option><option>info</option><option>warning</option><option>critical</option></select></label>
    <label>Category <input name="category" placeholder="e.g. market_data"></label>
    <label>Duration <select name="duration"><option value="1800">30 min</option><option value="3600" selected>1 h</option><option value="14400">4 h</option><option value="86400">1 day</option></select></label>
    <label>Comment <input name="comment" placeholder="why"></label>
    <button type="submit" class="primary">Create silence</button>
  </form><p id="silence-result" class="small" aria-live="polite"></p>`;
}

async function onClick(event) {
  const t = event.target;
  const { ack, report, unsilence, explain } = t.dataset || {};
  try {
    if (ack) {
      t.disabled = true;
      await api(`/api/alerts/${ack}/acknowledge`, { method: 'POST', body: {} });
      toast(`Alert ${ack} acknowledged`);
      await drawAlerts();
    } else if (report) {
      const r = await api(`/api/alerts/${report}/report`);
      const box = $('#report');
      box.hidden = false;
      box.innerHTML = `<h2>Report for alert ${esc(report)}</h2>
        <p><b>Escalation:</b> ${esc(r.triage.escalation)} · <b>needs a human:</b> ${r.triage.needs_human ? 'yes' : 'no'}</p>
        <p><b>Suggested action:</b> ${esc(r.triage.suggested_action || '—')}</p>
        <pre class="report">${esc(r.report)}</pre>
        <p class="small muted">Group: alerts ${r.group.map(esc).join(', ')} · deliveries: ${r.deliveries.length}</p>
        ${r.llm_configured && isAdmin(who) ? `<p><button type="button" data-explain="${esc(report)}">Explain (ask the LLM now)</button></p>` : ''}`;
      box.focus();
    } else if (explain) {
      t.disabled = true;
      t.textContent = 'Asking…';
      const r = await api(`/api/alerts/${explain}/explain`, { method: 'POST' });
      $('#report pre.report').textContent = r.report;
      t.textContent = 'Explained';
    } else if (unsilence) {
      await api(`/api/silences/${unsilence}`, { method: 'DELETE' });
      toast(`Silence ${unsilence} deleted`);
      await drawSilences();
    }
  } catch (error) {
    toast(error.message);
    t.disabled = false;
  }
}

async function onSubmit(event) {
  if (event.target.id !== 'silence-form') return;
  event.preventDefault();
  const form = new FormData(event.target);
  const matchers = {};
  for (const name of ['provider', 'rule', 'severity', 'category']) {
    const value = String(form.get(name) || '').trim();
    if (value) matchers[name] = value;
  }
  const result = $('#silence-result');
  if (!Object.keys(matchers).length) {
    result.textContent = 'Give at least one matcher (provider, rule, severity or category).';
    return;
  }
  try {
    const created = await api('/api/silences', { method: 'POST', body: { matchers, duration_s: Number(form.get('duration')), comment: String(form.get('comment') || '') } });
    result.textContent = `Silence ${created.id} until ${time(created.ends_at)}`;
    event.target.reset();
    await drawSilences();
  } catch (error) { result.textContent = error.message; }
}

async function start() {
  who = await shell('/alerts');
  if (who.needsKey) return needKey(main, who);
  main.innerHTML = `<h1>Alerts</h1>
    <section><h2>Firing</h2>${hasKey(who) ? '' : '<p class="muted small" id="ack-hint">Acknowledging an alert needs a key: sign in (top right).</p>'}<div id="active"></div></section>
    <section class="panel" id="report" tabindex="-1" hidden></section>
    <section><h2>Silences</h2>${silenceForm()}<div id="silences"></div></section>
    <section><h2>History (7 days)</h2><div id="history"></div></section>`;
  main.addEventListener('click', onClick);
  main.addEventListener('submit', onSubmit);
  try {
    await Promise.all([drawAlerts(), drawSilences()]);
  } catch (error) { return showError(main, error); }
  document.body.dataset.ready = 'true';
  connectLive({
    types: ['alert', 'ping'],
    onMessage: ({ type, data }) => {
      if (type !== 'alert') return;
      toast(`Alert ${data.state || ''}: ${data.rule || ''}`);
      drawAlerts();
    },
  });
}

start();
