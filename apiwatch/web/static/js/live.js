// The live feed: one WebSocket to /ws/live (issue 12's messages {type, ts, data}). The key
// travels as a Sec-WebSocket-Protocol entry `apikey.<key>` next to `apiwatch`, never in the
// URL. A lost connection says so in the header and reconnects with backoff; no message for
// 75 s (pings come every 30 s) counts as lost.
import { getKey } from './common.js';

const SILENCE_MS = 75_000;

export function connectLive({ types, providers, onMessage, onOpen }) {
  const indicator = document.getElementById('live');
  let socket;
  let backoff = 500;
  let watchdog;
  let stopped = false;

  const show = (state, text) => {
    if (!indicator) return;
    indicator.hidden = false;
    indicator.dataset.state = state;
    indicator.textContent = text;
  };

  const arm = () => {
    clearTimeout(watchdog);
    watchdog = setTimeout(() => socket && socket.close(4000, 'no message for 75 s'), SILENCE_MS);
  };

  function open() {
    const params = new URLSearchParams();
    if (types) params.set('types', types.join(','));
    for (const p of providers || []) params.append('provider', p);
    const query = params.toString() ? `?${params}` : '';
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const protocols = ['apiwatch'];
    const key = getKey();
    if (key) protocols.push(`apikey.${key}`);
    show('connecting', 'live: connecting…');
    socket = new WebSocket(`${scheme}://${location.host}/ws/live${query}`, protocols);
    socket.addEventListener('open', () => {
      backoff = 500;
      show('live', 'live');
      arm();
      onOpen?.();
    });
    socket.addEventListener('message', (event) => {
      arm();
      let message;
      try { message = JSON.parse(event.data); } catch { return; }
      onMessage(message);
    });
    socket.addEventListener('close', (event) => {
      clearTimeout(watchdog);
      if (stopped) return;
      if (event.code === 4401 || event.code === 4403) {
        show('refused', `live: refused (${event.reason || event.code}); sign in`);
        return;
      }
      show('lost', `live: connection lost, retrying in ${Math.round(backoff / 1000)} s`);
      setTimeout(open, backoff);
      backoff = Math.min(backoff * 2, 15_000);
    });
  }

  open();
  return { close: () => { stopped = true; socket?.close(); } };
}
