// Vendor SLOs: per provider its objective, the uptime it reached over the objective's
// window, the error budget left, how fast it burns, and the scorecard's rank and poor-SLA
// flag with the reasons; the printable monthly vendor report one click away.
import { $, api, esc, needKey, shell, showError } from './common.js';
import {
  attainment, budgetBar, burnText, keyedReportLinks, objectiveText, poorFlag, reportMonths, reportUrl,
} from './slo-parts.js';

const main = $('#main');

/** The scorecard window: the objective window most providers share (the settings' one). */
function usualWindow(providers) {
  const counts = new Map();
  for (const p of providers) counts.set(p.objective.window_days, (counts.get(p.objective.window_days) || 0) + 1);
  const [days] = [...counts].sort((a, b) => b[1] - a[1])[0] || [30];
  return `${days}d`;
}

function row(p, card) {
  const own = `${p.objective.window_days}d`;
  const windowFigures = p.windows[own] || p.windows['30d'];
  return `<tr data-provider="${esc(p.provider)}">
    <td class="num rank">${card?.rank ?? '—'}</td>
    <th scope="row"><a href="/providers/${encodeURIComponent(p.provider)}">${esc(p.name)}</a>
      <div class="small muted">${esc(p.category)}</div></th>
    <td class="objective">${esc(objectiveText(p.objective))}</td>
    <td class="attainment">${attainment(windowFigures)}</td>
    <td class="budget-cell">${budgetBar(p.budget)}</td>
    <td class="num burn">${burnText(p.budget?.burn_rate)}<div class="small muted">1 h: ${burnText(p.windows['1h']?.budget?.burn_rate)}</div></td>
    <td class="flag">${poorFlag(card)}</td></tr>`;
}

async function draw() {
  const slo = await api('/api/slo');
  const span = usualWindow(slo.providers);
  const scorecard = await api(`/api/scorecard?window=${span}`);
  const cards = new Map(scorecard.providers.map((r) => [r.provider, r]));
  // Scorecard order: ranked providers first, best first; those without events last.
  const order = new Map(scorecard.providers.map((r, i) => [r.provider, i]));
  const providers = [...slo.providers].sort((a, b) => (order.get(a.provider) ?? 1e9) - (order.get(b.provider) ?? 1e9));
  const poor = scorecard.providers.filter((r) => r.poor_sla).length;
  const judged = slo.providers.filter((p) => p.budget?.remaining != null);
  const missed = judged.filter((p) => p.windows[`${p.objective.window_days}d`]?.meets_target === false).length;
  $('#totals').innerHTML = `<div class="figure"><b>${slo.providers.length}</b><span>providers</span></div>
    <div class="figure"><b>${judged.length}</b><span>with events</span></div>
    <div class="figure"><b>${missed}</b><span>missing their objective</span></div>
    <div class="figure"><b>${poor}</b><span>flagged poor SLA (${esc(span)})</span></div>`;
  $('#table').innerHTML = `<div class="table-wrap" tabindex="0" role="region" aria-label="SLO figures per provider"><table class="slo-table">
    <thead><tr><th class="num" scope="col">Rank</th><th scope="col">Provider</th><th scope="col">Objective</th>
    <th scope="col">Attainment (objective window)</th><th scope="col">Error budget left</th>
    <th class="num" scope="col">Burn rate</th><th scope="col">Poor SLA (${esc(span)})</th></tr></thead>
    <tbody>${providers.map((p) => row(p, cards.get(p.provider))).join('')}</tbody></table></div>`;
}

function reportPicker() {
  const months = reportMonths();
  const options = months.map((m, i) => `<option value="${m}"${i === 1 ? ' selected' : ''}>${m}${i === 0 ? ' (so far)' : ''}</option>`).join('');
  return `<p class="report-line"><label>Month <select id="report-month">${options}</select></label>
    <a id="report-link" data-report href="${reportUrl(months[1])}" target="_blank" rel="noopener">Monthly vendor report</a>
    <span class="small muted">printable: one page per month, prints to PDF</span></p>`;
}

async function start() {
  const who = await shell('/slo');
  if (who.needsKey) return needKey(main, who);
  main.innerHTML = `<h1>Vendor SLOs</h1>
    ${reportPicker()}
    <div class="summary" id="totals"></div>
    <section class="panel"><h2>Objectives, attainment and error budgets</h2><div id="table"></div>
    <p class="small muted">Attainment: good ÷ (good + bad) checks over each provider's objective window; rate limits and
    skipped checks are neither, maintenance silences are left out. Burn rate: how fast the error budget is spent
    (1× spends it exactly over the window). Rank and the poor-SLA flag come from the scorecard.</p></section>`;
  $('#report-month').addEventListener('change', (event) => { $('#report-link').href = reportUrl(event.target.value); });
  keyedReportLinks(main);
  try { await draw(); } catch (error) { return showError($('#table'), error); }
  document.body.dataset.ready = 'true';
}

start();
