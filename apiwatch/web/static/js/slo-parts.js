// SLO figures as the SLO page and the provider page show them (GET /api/slo,
// /api/slo/{provider}, /api/scorecard): objective, attainment, error budget left with its
// bar, burn rate, the poor-SLA flag, and the link to the printable monthly vendor report.
import { esc, getKey, seconds, toast } from './common.js';

const fixed = (value, digits) => Number(value).toFixed(digits).replace(/\.?0+$/, '');

/** "99.5 % over 30 d · SLA 99.9 % · p95 ≤ 800 ms" */
export function objectiveText(o) {
  return [`${fixed(o.target_pct, 3)} % over ${o.window_days} d`,
    o.sla_pct != null ? `SLA ${fixed(o.sla_pct, 3)} %` : '',
    o.latency_p95_ms != null ? `p95 ≤ ${Math.round(o.latency_p95_ms)} ms` : ''].filter(Boolean).join(' · ');
}

export const uptimeText = (pctValue) => (pctValue == null ? '—' : `${pctValue.toFixed(3)} %`);
export const burnText = (rate) => (rate == null ? '—' : `${rate.toFixed(2)}×`);

/** A status word for met / missed / not judged: colour and word, never colour alone. */
export function verdict(met) {
  if (met == null) return '<span class="status s-unknown">no events</span>';
  return met ? '<span class="status s-online">met</span>' : '<span class="status s-offline">missed</span>';
}

/** Uptime over a window beside its objective (the figures of one /api/slo window). */
export function attainment(w) {
  if (!w || !w.events) return '<span class="muted">no events</span>';
  return `${uptimeText(w.uptime_pct)} ${verdict(w.meets_target)}
    <div class="small muted">${w.good} good / ${w.bad} bad${w.throttled ? ` · ${w.throttled} throttled` : ''}</div>`;
}

/** The error budget left: a bar (remaining share) and the words, which carry the figure. */
export function budgetBar(b) {
  if (!b || b.remaining == null) return '<span class="muted">no events</span>';
  const left = 100 * b.remaining;
  const width = Math.max(0, Math.min(100, left));
  const level = left <= 0 ? 'full' : left < 25 ? 'warn' : '';
  // Overspent budgets run to hundreds of times the allowance: say it as a multiple.
  const spent = b.spent < 10 ? `${Math.round(100 * b.spent)} % of it` : `${Math.round(b.spent)}× the budget`;
  const words = left <= 0 ? `exhausted: ${spent} spent` : `${left.toFixed(1)} % left · ${seconds(b.remaining_s)}`;
  return `<div class="budget"><div class="meter${left <= 0 ? ' spent' : ''}" aria-hidden="true"><b class="${level}" style="width:${width}%"></b></div>
    <span class="budget-words">${esc(words)}</span></div>`;
}

export function poorFlag(row) {
  if (!row) return '<span class="muted">—</span>';
  if (!row.poor_sla) return '<span class="status s-online">no</span>';
  return `<span class="status s-offline">poor SLA</span>
    <ul class="reasons small">${row.reasons.map((r) => `<li>${esc(r)}</li>`).join('')}</ul>`;
}

/** Months the vendor report can show, newest first: this one (so far) and the 11 before. */
export function reportMonths(now = new Date()) {
  const out = [];
  for (let i = 0; i < 12; i += 1) {
    const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - i, 1));
    out.push(`${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}`);
  }
  return out;
}

export const reportUrl = (month) => `/reports/vendors?month=${encodeURIComponent(month)}`;

/**
 * The report is an HTML page under the API's keys: with a key in this tab, a click fetches
 * it with the key (never in the URL) and opens it in a new tab; without one (public reads)
 * the link works as it is.
 */
export function keyedReportLinks(root) {
  root.addEventListener('click', async (event) => {
    const link = event.target.closest?.('a[data-report]');
    if (!link || !getKey()) return;
    event.preventDefault();
    const tab = window.open('', '_blank');
    try {
      const response = await fetch(link.href, { headers: { 'X-API-Key': getKey(), Accept: 'text/html' } });
      if (!response.ok) throw new Error(`vendor report: HTTP ${response.status}`);
      const url = URL.createObjectURL(new Blob([await response.text()], { type: 'text/html' }));
      if (tab) tab.location.href = url; else location.href = url;
    } catch (error) {
      tab?.close();
      toast(error.message);
    }
  });
}

/** The provider page's SLO panel: the same figures as the SLO page, per window too. */
export function sloPanel(s, card) {
  const own = `${s.objective.window_days}d`;
  const labels = [...new Set(['1h', '24h', '7d', '30d', '90d', own])].filter((w) => s.windows[w]);
  const rel = s.reliability || {};
  const burns = Object.entries(s.burn_rates || {}).map(([w, r]) => `${esc(w)} ${burnText(r)}`).join(' · ');
  return `<dl class="slo-facts">
      <dt>Objective</dt><dd class="objective">${esc(objectiveText(s.objective))}</dd>
      <dt>Attainment (${esc(own)})</dt><dd class="attainment">${attainment(s.windows[own])}</dd>
      <dt>Error budget left</dt><dd class="budget-cell">${budgetBar(s.budget)}</dd>
      <dt>Burn rate</dt><dd class="burn">${burnText(s.budget?.burn_rate)} over ${esc(own)}
        <div class="small muted">${burns || '—'}</div>
        ${s.burn_alert ? `<span class="status s-offline">burn alert: ${esc(s.burn_alert.condition)}</span>` : ''}</dd>
      <dt>Poor SLA (${esc(card?.window || own)})</dt><dd class="flag">${poorFlag(card)}</dd>
      <dt>Incidents (${esc(own)})</dt><dd>${rel.incidents ?? 0} · MTTR ${seconds(rel.mttr_s)} · MTBF ${seconds(rel.mtbf_s)}</dd>
    </dl>
    <div class="table-wrap" tabindex="0" role="region" aria-label="Uptime per window"><table><thead><tr><th scope="col">Window</th>
      <th class="num" scope="col">Uptime</th><th class="num" scope="col">Checks</th><th class="num" scope="col">p95</th><th class="num" scope="col">Burn rate</th></tr></thead><tbody>
      ${labels.map((w) => { const f = s.windows[w]; return `<tr data-window="${esc(w)}"><td>${esc(w)}</td><td class="num">${uptimeText(f.uptime_pct)}</td>
        <td class="num">${f.events}</td><td class="num">${f.p95_ms == null ? '—' : `${Math.round(f.p95_ms)} ms`}</td><td class="num">${burnText(f.budget?.burn_rate)}</td></tr>`; }).join('')}
    </tbody></table></div>
    <p class="small"><a href="/slo">Every provider's SLO</a> · <a data-report href="${reportUrl(reportMonths()[1])}" target="_blank" rel="noopener">monthly vendor report</a></p>`;
}
