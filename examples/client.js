// A polite client of an API protected by apiwatch (Node 20+, no dependencies): it sends
// X-API-Key, reads the X-RateLimit-* headers, slows down when a window is nearly used up,
// and on 429 waits Retry-After seconds and tries again.
//
//   node examples/client.js --url http://127.0.0.1:8000 --key "$EXAMPLE_API_KEY" \
//     --path /api/products --requests 20
//
// Prints one line per event and a JSON summary last; exits 1 if a request never succeeded.

const WINDOWS = ["Minute", "Hour", "Day"];

// Seconds to pause before the next request. While every window has more than lowFraction
// of its limit left: none. When one runs low, spread what is left over the time until it
// resets (X-RateLimit-*-Reset is in seconds from now); the tightest window wins.
function pauseFor(headers, lowFraction = 0.1) {
  let pause = 0;
  for (const window of WINDOWS) {
    const limit = Number(headers.get(`X-RateLimit-${window}-Limit`));
    const remaining = Number(headers.get(`X-RateLimit-${window}-Remaining`));
    const reset = Number(headers.get(`X-RateLimit-${window}-Reset`));
    if (!headers.has(`X-RateLimit-${window}-Limit`) || [limit, remaining, reset].some(Number.isNaN)) {
      continue;
    }
    if (remaining <= Math.max(1, Math.floor(limit * lowFraction))) {
      pause = Math.max(pause, reset / (remaining + 1));
    }
  }
  return pause;
}

// Seconds to wait after a 429: the server's Retry-After, else fallback.
function retryAfter(headers, fallback = 1) {
  const value = Number(headers.get("Retry-After"));
  return headers.has("Retry-After") && Number.isFinite(value) ? Math.max(value, 0) : fallback;
}

const sleep = (seconds) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));

async function run({ url, key, requests, maxRetries = 5, say = console.log }) {
  const summary = { requests: 0, ok: 0, rate_limited: 0, slowed: 0, waited_s: 0, failed: 0 };
  for (let number = 1; number <= requests; number++) {
    let response;
    let body = "";
    for (let attempt = 0; attempt <= maxRetries; attempt++) {
      response = await fetch(url, { headers: { "X-API-Key": key } });
      body = await response.text();
      summary.requests++;
      if (response.status !== 429) break;
      summary.rate_limited++;
      const wait = retryAfter(response.headers);
      let detail = "";
      try { detail = JSON.parse(body).detail ?? ""; } catch { /* not JSON */ }
      say(`request ${number}: 429 (${detail}); waiting ${wait} s (Retry-After)`);
      if (attempt === maxRetries) break;
      await sleep(wait);
      summary.waited_s += wait;
    }
    if (response.ok) {
      summary.ok++;
      const remaining = response.headers.get("X-RateLimit-Minute-Remaining") ?? "?";
      say(`request ${number}: ${response.status}, minute remaining ${remaining}`);
      const pause = pauseFor(response.headers);
      if (pause > 0 && number < requests) {
        summary.slowed++;
        say(`request ${number}: a window is nearly used up; pausing ${pause.toFixed(2)} s`);
        await sleep(pause);
        summary.waited_s += pause;
      }
    } else {
      summary.failed++;
      say(`request ${number}: gave up with ${response.status}: ${body.slice(0, 200)}`);
    }
  }
  return summary;
}

function option(name, fallback) {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 && index + 1 < process.argv.length ? process.argv[index + 1] : fallback;
}

async function main() {
  const key = option("key", process.env.EXAMPLE_API_KEY);
  if (!key) {
    console.error("give --key or set EXAMPLE_API_KEY");
    return 2;
  }
  const base = option("url", "http://127.0.0.1:8000").replace(/\/$/, "");
  const summary = await run({
    url: base + option("path", "/api/products"),
    key,
    requests: Number(option("requests", "10")),
    maxRetries: Number(option("max-retries", "5")),
  });
  summary.waited_s = Math.round(summary.waited_s * 100) / 100;
  console.log(JSON.stringify(summary));
  return summary.failed === 0 ? 0 : 1;
}

module.exports = { pauseFor, retryAfter, run };

if (require.main === module) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (error) => {
      console.error(`client failed: ${error.message}${error.cause ? ` (${error.cause.message})` : ""}`);
      process.exitCode = 1;
    },
  );
}
