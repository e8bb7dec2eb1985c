// Page-load latency under load: CLIENTS concurrent clients fetch the app's pages in turn
// (full server-rendered HTML, as a browser's first load) for SECONDS, then print one JSON
// line with the count and the latency percentiles in milliseconds.
//   node bench/load.mjs http://127.0.0.1:3000 [SECONDS=60] [CLIENTS=4] [PATH ...]
const [base, seconds = '60', clients = '4', ...rest] = process.argv.slice(2);
if (!base) {
  console.error('usage: node bench/load.mjs BASE_URL [SECONDS] [CLIENTS] [PATH ...]');
  process.exit(2);
}
const paths = rest.length ? rest : ['/', '/prompts', '/datasets', '/models', '/experiments', '/queue'];
const until = Date.now() + Number(seconds) * 1000;
const times = [];
const byPath = Object.fromEntries(paths.map((p) => [p, []]));
let failures = 0;

async function client(offset) {
  for (let i = offset; Date.now() < until; i++) {
    const path = paths[i % paths.length];
    const t0 = performance.now();
    try {
      const res = await fetch(base + path);
      await res.text();
      if (!res.ok) failures++;
    } catch {
      failures++;
    }
    times.push(performance.now() - t0);
    byPath[path].push(performance.now() - t0);
  }
}

await Promise.all(Array.from({ length: Number(clients) }, (_, k) => client(k)));
times.sort((a, b) => a - b);
const quantile = (xs, p) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))];
const q = (p) => quantile(times, p);
const p99_by_path = Object.fromEntries(Object.entries(byPath).map(([p, xs]) => {
  xs.sort((a, b) => a - b);
  return [p, xs.length ? +quantile(xs, 0.99).toFixed(1) : null];
}));
console.log(JSON.stringify({
  task: 'page_load_under_load',
  requests: times.length,
  failures,
  clients: Number(clients),
  seconds: Number(seconds),
  p50_ms: +q(0.5).toFixed(1),
  p95_ms: +q(0.95).toFixed(1),
  p99_ms: +q(0.99).toFixed(1),
  max_ms: +times[times.length - 1].toFixed(1),
  paths,
  p99_by_path,
}));
