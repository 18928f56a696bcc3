// Load generator for one scenario, run as its own process by bench/run.mjs so it does not share
// an event loop with the orchestrator. Reads a JSON config from argv[2], prints a JSON result.
import autocannon from "autocannon";

const config = JSON.parse(process.argv[2]);
const cache = { HIT: 0, MISS: 0, BYPASS: 0 };
let statusErrors = 0;
let seq = 0;

const randomId = () => config.ids.min + Math.floor(Math.random() * (config.ids.max - config.ids.min + 1));

// The credential every request carries: a bearer API key or a session cookie (config.headers).
const auth = config.headers ?? {};

function nextRequest() {
  const id = config.ids ? randomId() : 0;
  const write = config.writeRatio > 0 && Math.random() < config.writeRatio;
  if (config.kind === "patch" || write) {
    return { method: "PATCH", path: `/api/tasks/${id}`, headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ done: seq++ % 2 === 0 }) };
  }
  if (config.kind === "get") return { method: "GET", path: `/api/tasks/${id}`, headers: auth };
  if (config.kind === "create") {
    return { method: "POST", path: "/api/tasks", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ title: `bench create ${seq++}` }) };
  }
  return { method: "GET", path: config.path, headers: auth };
}

const result = await autocannon({
  url: config.url,
  connections: config.connections ?? 16,
  duration: config.seconds,
  requests: [
    {
      setupRequest: (req) => ({ ...req, ...nextRequest() }),
      onResponse: (status, _body, _ctx, headers) => {
        // A page that redirects to the sign-in form is not the page: config.expectStatus says what counts.
        if (config.expectStatus ? status !== config.expectStatus : status >= 400) statusErrors++;
        const outcome = headers?.["x-cache"];
        if (outcome in cache) cache[outcome]++;
      },
    },
  ],
});

console.log(
  JSON.stringify({
    requestsPerSecond: result.requests.average,
    total: result.requests.total,
    latency: { p50: result.latency.p50, p99: result.latency.p99, mean: result.latency.average },
    errors: result.errors + result.timeouts + statusErrors,
    non2xx: result.non2xx,
    cache,
  }),
);
