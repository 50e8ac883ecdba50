// The public status page: everything from GET /status.json (no key, nothing internal).
const CATEGORIES = {
  market_data: 'Market data', blockchain_explorers: 'Blockchain explorers', news: 'News',
  sentiment: 'Sentiment', onchain: 'On-chain',
};
const LEVEL_WORDS = {
  operational: 'operational', degraded: 'degraded', partial_outage: 'partial outage',
  major_outage: 'major outage', no_data: 'no data',
};
const esc = (v) => String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const when = (iso) => (iso ? new Date(iso).toLocaleString() : '');

function duration(s) {
  if (s < 60) return `${Math.round(s)} s`; // not "0 min" for a short one
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  return h < 48 ? `${h} h ${m % 60} min` : `${Math.floor(h / 24)} days`;
}

function overall(providers) {
  const bad = providers.filter((p) => p.status === 'offline').length;
  const slow = providers.filter((p) => p.status === 'degraded').length;
  if (bad) return ['s-offline', `${bad} of ${providers.length} services are down`];
  if (slow) return ['s-degraded', `${slow} of ${providers.length} services are degraded`];
  return ['s-online', 'All services are operational'];
}

function bars(p) {
  const cells = p.days.map((d) =>
    `<i class="l-${d.level}" title="${d.date}: ${LEVEL_WORDS[d.level]}${d.uptime_pct == null ? '' : ` (${d.uptime_pct} %)`}"></i>`).join('');
  return `<div class="days" role="img" aria-label="${esc(p.name)}: daily uptime over ${p.days.length} days, mean ${p.uptime_90d_pct ?? 'unknown'} %">${cells}</div>
    <div class="days-legend"><span>${p.days.length} days ago</span><span>${p.uptime_90d_pct == null ? 'no data' : `${p.uptime_90d_pct.toFixed(2)} % uptime`}</span><span>today</span></div>`;
}

// Start, end (or "ongoing") and duration: when it began and whether, and when, it was over.
function incident(i) {
  const end = i.ongoing || !i.end
    ? '<b class="end">ongoing</b>'
    : `<time class="end" datetime="${esc(i.end)}">${esc(when(i.end))}</time>`;
  return `<li class="incident" data-provider="${esc(i.provider)}" data-ongoing="${i.ongoing ? 'true' : 'false'}"><b>${esc(i.provider_name)}</b> ${esc(i.worst)}
    · <time class="start" datetime="${esc(i.start)}">${esc(when(i.start))}</time> to ${end}
    · ${esc(duration(i.duration_s))}${i.ongoing ? ' so far' : ''}
    ${i.cause ? `<br><span class="muted small">${esc(i.cause)}</span>` : ''}</li>`;
}

// A planned maintenance window (it has a title) or a silence of a provider or category.
function notice(n) {
  if (n.title) {
    const who = (n.providers || []).map((p) => esc(p.name)).join(', ');
    const span = n.state === 'upcoming'
      ? `planned from <time datetime="${esc(n.starts_at)}">${esc(when(n.starts_at))}</time> to <time datetime="${esc(n.ends_at)}">${esc(when(n.ends_at))}</time>`
      : `in progress until <time datetime="${esc(n.ends_at)}">${esc(when(n.ends_at))}</time>`;
    return `<div class="notice warn maintenance" role="note" data-state="${esc(n.state)}"><b>${esc(n.title)}</b>${who ? ` (${who})` : ''} · ${span}${n.message ? `<br>${esc(n.message)}` : ''}</div>`;
  }
  return `<div class="notice warn" role="note">Maintenance${n.provider_name ? ` of ${esc(n.provider_name)}` : n.category ? ` of ${esc(CATEGORIES[n.category] || n.category)}` : ''}
    until ${esc(when(n.ends_at))}: alerts are paused; the status may change meanwhile.</div>`;
}

function render(data) {
  document.title = data.title;
  document.getElementById('title').textContent = data.title;
  const [cls, text] = overall(data.providers);
  const groups = {};
  for (const p of data.providers) (groups[p.category] ||= []).push(p);
  const notices = data.notices.map(notice).join('');
  const legend = data.levels.map((l, i) => `<span><i class="l-${l.level}"></i>${LEVEL_WORDS[l.level]} (${l.min_uptime_pct > 0 ? `≥ ${l.min_uptime_pct} %` : `below ${data.levels[i - 1]?.min_uptime_pct} %`})</span>`).join('')
    + '<span><i class="l-no_data"></i>no data</span>';
  const sections = Object.keys(groups).sort().map((cat) => `<section class="panel" aria-labelledby="c-${esc(cat)}"><h2 id="c-${esc(cat)}">${esc(CATEGORIES[cat] || cat)}</h2>
    ${groups[cat].map((p) => `<div class="sp-provider" data-provider="${esc(p.id)}"><div class="row"><h3>${esc(p.name)}</h3>
      <span class="status s-${esc(p.status)}">${esc(p.status)}</span></div>
      ${p.cause ? `<p class="small muted">${esc(p.cause)}</p>` : ''}${bars(p)}</div>`).join('')}</section>`).join('');
  const incidents = data.incidents.length ? `<ul class="timeline">${data.incidents.slice(0, 50).map(incident).join('')}</ul>` : '<p class="muted">No incidents in the last 90 days.</p>';
  document.getElementById('main').innerHTML = `<h1 class="visually-hidden">${esc(data.title)}</h1>
    <div class="overall ${cls}" role="status">${text}</div>${notices}
    ${sections || '<p class="notice">No public services.</p>'}
    <div class="legend" aria-label="Legend">${legend}</div>
    <section><h2>Incidents</h2>${incidents}</section>
    <p class="small muted">Updated ${esc(when(data.generated_at))}; refreshed every minute.</p>`;
}

async function load() {
  const response = await fetch('/status.json', { headers: { Accept: 'application/json' } });
  if (!response.ok) throw new Error(`status.json: HTTP ${response.status}`);
  render(await response.json());
  document.body.dataset.ready = 'true';
}

load().catch((error) => {
  document.getElementById('main').innerHTML = `<div class="notice error" role="alert">${esc(error.message)}</div>`;
});
setInterval(() => load().catch(() => {}), 60_000);
