// Order books as the provider page shows them (GET /api/data/books): per book the best bid
// and ask, spread, depth within ±1 % of the mid, age and update id, and every integrity
// check's verdict as a word with the reason of a failure — never colour alone.
import { ago, esc } from './common.js';

// The API's verdicts in words, with the status colour that goes with them.
const VERDICTS = {
  ok: ['passing', 's-online'],
  failed: ['failing', 's-offline'],
  not_judged: ['not judged', 's-unknown'],
};

export function checkVerdict(verdict) {
  const [word, colour] = VERDICTS[verdict] || [verdict, 's-unknown'];
  return `<span class="status ${colour}">${esc(word)}</span>`;
}

const symbolOf = (b) => b.symbol || b.item.replace(/^book:/, '');
// Exact decimals arrive as strings and are shown as they are: no float on the way.
const exact = (value) => (value == null ? '—' : esc(value));

function ageText(b) {
  // Binance's depth carries no time: its age is unknown, not zero.
  const age = b.age_s == null ? 'no book time' : `${b.age_s.toFixed(3)} s`;
  return `${age} <span class="small muted">(fetched ${ago(b.fetched_at)})</span>`;
}

function overall(b) {
  const failing = Object.keys(b.failed || {});
  return failing.length
    ? `<span class="status s-offline">failing: ${esc(failing.join(', '))}</span>`
    : '<span class="status s-online">none failing</span>';
}

function checksTable(b) {
  const symbol = symbolOf(b);
  return `<div class="table-wrap" tabindex="0"><table class="book-checks" data-item="${esc(b.item)}">
    <caption class="visually-hidden">Integrity checks of the ${esc(symbol)} book</caption>
    <thead><tr><th>Check (${esc(symbol)})</th><th>Verdict</th><th>Reason</th></tr></thead><tbody>
    ${Object.entries(b.checks).map(([check, verdict]) => `<tr data-check="${esc(check)}"><td class="mono">${esc(check)}</td>
      <td class="verdict">${checkVerdict(verdict)}</td><td class="reason small">${esc(b.failed?.[check] ?? '')}</td></tr>`).join('')}
    </tbody></table></div>`;
}

/** The panel for one provider's books (rows of GET /api/data/books?provider=…). */
export function bookPanel(rows) {
  if (!rows.length) return '<p class="muted">No order book collected yet.</p>';
  return `<div class="table-wrap" tabindex="0"><table class="books"><thead><tr><th>Symbol</th><th class="num">Best bid</th><th class="num">Best ask</th>
    <th class="num">Spread (bps)</th><th class="num">Depth ±1 % (quote)</th><th>Age when fetched</th><th class="num">Update id</th><th>Checks</th></tr></thead><tbody>
    ${rows.map((b) => `<tr data-item="${esc(b.item)}"><td>${esc(symbolOf(b))}</td><td class="num bid">${exact(b.best_bid)}</td><td class="num ask">${exact(b.best_ask)}</td>
      <td class="num spread">${exact(b.spread_bps)}</td><td class="num depth">${exact(b.depth)}</td><td class="age">${ageText(b)}</td>
      <td class="num update-id">${b.update_id == null ? '—' : esc(b.update_id)}</td><td class="overall">${overall(b)}</td></tr>`).join('')}
    </tbody></table></div>
    ${rows.map(checksTable).join('')}`;
}
