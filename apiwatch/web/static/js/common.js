// Shared by every dashboard page: the API key (sessionStorage, never a URL), API calls,
// the page header with navigation and the sign-in box, and small formatting helpers.

const KEY_NAME = 'apiwatch.key';

export const getKey = () => sessionStorage.getItem(KEY_NAME) || '';
export const setKey = (key) =>
  key ? sessionStorage.setItem(KEY_NAME, key) : sessionStorage.removeItem(KEY_NAME);

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === 'string' ? detail : JSON.stringify(detail ?? `HTTP ${status}`));
    this.status = status;
  }
}

// The signed-in key's windows as the limiter saw them on the latest response that had them
// (X-RateLimit-{Minute,Hour,Day}-{Limit,Remaining,Reset}): the only source of a key's use of
// its minute window, which the hourly roll-ups cannot give.
let rateLimit = null;
export const rateLimitNow = () => rateLimit;

function readRateLimit(headers) {
  if (!headers.has('X-RateLimit-Minute-Limit')) return;
  const read = (w) => ({
    limit: Number(headers.get(`X-RateLimit-${w}-Limit`)),
    remaining: Number(headers.get(`X-RateLimit-${w}-Remaining`)),
    reset_s: Number(headers.get(`X-RateLimit-${w}-Reset`)),
  });
  rateLimit = { minute: read('Minute'), hour: read('Hour'), day: read('Day') };
}

/** Call apiwatch's REST API with the signed-in key; JSON in and out. */
export async function api(path, { method = 'GET', body } = {}) {
  const headers = { Accept: 'application/json' };
  const key = getKey();
  if (key) headers['X-API-Key'] = key;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  readRateLimit(response.headers);
  if (!response.ok) {
    let detail;
    try { detail = (await response.json()).detail; } catch { detail = response.statusText; }
    throw new ApiError(response.status, detail);
  }
  return response.status === 204 ? null : response.json();
}

export const esc = (value) =>
  String(value ?? '').replace(/[&<>"']/g, (c) =>
    ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

export const $ = (selector, root = document) => root.querySelector(selector);

export function statusBadge(status) {
  const s = esc(status || 'unknown');
  return `<span class="status s-${s}">${s}</span>`;
}

export function ago(iso, now = Date.now()) {
  if (!iso) return '—';
  const s = Math.max(0, (now - Date.parse(iso)) / 1000);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

/** How long until a future moment: "in 4 min" ("now" once it has passed). */
export function until(iso, now = Date.now()) {
  if (!iso) return '—';
  const s = (Date.parse(iso) - now) / 1000;
  return s <= 0 ? 'now' : `in ${seconds(s)}`;
}

export function seconds(value) {
  if (value == null) return '—';
  // A no-break space: a narrow card wraps before the number, never between it and its unit.
  if (value < 90) return `${Math.round(value)}\u00a0s`;
  if (value < 5400) return `${Math.round(value / 60)}\u00a0min`;
  if (value < 172800) return `${(value / 3600).toFixed(1)}\u00a0h`;
  return `${Math.round(value / 86400)}\u00a0d`;
}

export const ms = (v) => (v == null ? '—' : `${v < 10 ? v.toFixed(1) : Math.round(v)} ms`);
export const pct = (v, digits = 2) => (v == null ? '—' : `${Number(v).toFixed(digits)} %`);
export const time = (iso) => (iso ? new Date(iso).toLocaleString() : '—');
export const clock = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '—');

export function toast(text) {
  let box = $('.toasts');
  if (!box) {
    box = document.createElement('div');
    box.className = 'toasts';
    box.setAttribute('role', 'status');
    box.setAttribute('aria-live', 'polite');
    document.body.append(box);
  }
  const item = document.createElement('div');
  item.className = 'toast';
  item.textContent = text;
  box.append(item);
  setTimeout(() => item.remove(), 6000);
  while (box.children.length > 4) box.firstChild.remove();
}

const PAGES = [
  ['/', 'Overview'],
  ['/alerts', 'Alerts'],
  ['/schedules', 'Schedules & data'],
  ['/slo', 'SLOs'],
  ['/usage', 'Inbound API'],
  ['/status', 'Status page'],
];

/**
 * Put the header (brand, navigation, live indicator, sign-in) above <main> and learn who
 * the key is. Resolves to {scope, name, public_read} or {scope: null, needsKey: true}.
 */
export async function shell(active) {
  const header = document.createElement('header');
  header.className = 'top';
  const links = PAGES.map(([href, label]) =>
    `<li><a href="${href}"${href === active ? ' aria-current="page"' : ''}>${label}</a></li>`).join('');
  header.innerHTML = `
    <a class="brand" href="/">apiwatch</a>
    <nav aria-label="Pages"><ul>${links}</ul></nav>
    <span class="spacer"></span>
    <span class="live" data-state="off" id="live" role="status" aria-live="polite" hidden></span>
    <form class="signin" id="signin" autocomplete="off">
      <label class="visually-hidden" for="key-input">API key</label>
      <input id="key-input" type="password" placeholder="API key" autocomplete="off" spellcheck="false">
      <button type="submit">Sign in</button>
    </form>`;
  document.body.prepend(header);
  const skip = document.createElement('a');
  skip.className = 'skip';
  skip.href = '#main';
  skip.textContent = 'Skip to content';
  document.body.prepend(skip);
  const who = await whoami();
  renderSignin(who);
  document.documentElement.dataset.scope = who.scope || 'none';
  return who;
}

async function whoami() {
  try {
    return await api('/api/whoami');
  } catch (error) {
    if (error.status === 401 || error.status === 403) return { scope: null, needsKey: true, error: error.message };
    throw error;
  }
}

function renderSignin(who) {
  const form = $('#signin');
  if (who.scope) {
    form.innerHTML = `<span class="who">${esc(who.name)} · ${esc(who.scope)}</span>
      <button type="button" id="signout">Sign out</button>`;
    $('#signout').addEventListener('click', () => { setKey(''); location.reload(); });
    return;
  }
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const value = $('#key-input').value.trim();
    if (value) { setKey(value); location.reload(); }
  });
}

/** A page that needs a key and has none says so, instead of failing call by call. */
export function needKey(main, who) {
  main.innerHTML = `<div class="notice warn" role="alert">
    ${who.error ? `${esc(who.error)}. ` : ''}Sign in with an apiwatch API key (top right) to see this page.
    Keys are created with <code>apiwatch keys create --name NAME --scope read|admin</code>;
    the key stays in this tab (sessionStorage) and is sent only in the X-API-Key header.</div>`;
}

export function showError(target, error) {
  target.innerHTML = `<div class="notice error" role="alert">${esc(error.message || error)}</div>`;
}

export const isAdmin = (who) => who.scope === 'admin';
// Any valid key, read or admin: what acknowledging needs (never anonymous, even with public read).
export const hasKey = (who) => Boolean(who.scope);
