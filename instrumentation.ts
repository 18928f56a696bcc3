// Runs once when a Next.js server starts, before it serves requests. Everything is inside the
// nodejs branch, which the edge build drops (it uses process.exit, node:http).
export async function register() {
  if (process.env.NEXT_RUNTIME === "nodejs") {
    let trustedProxyHops: number;
    try {
      // A bad variable, or production without BETTER_AUTH_SECRET, stops the server here with the
      // variable named. Thrown from register, Next.js would log it and go on answering 500s.
      trustedProxyHops = (await import("./lib/env")).env.TRUSTED_PROXY_HOPS;
      (await import("./lib/auth/secret")).resolveAuthSecret();
    } catch (err) {
      const message = (err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, " ");
      try {
        (await import("./lib/log")).log.error(message);
      } catch {
        // lib/log reads the very environment that is wrong: write its JSON line by hand.
        process.stderr.write(`${JSON.stringify({ level: "error", time: new Date().toISOString(), service: "writethrough-tasks", msg: message })}\n`);
      }
      process.exit(1);
    }
    // Before the first request reaches Next.js: the per-address limits count the socket's address
    // (or the proxies' entries), never one the client wrote (docs/decisions/008). This needs the
    // process that owns the http server, as `next start` is; on serverless platforms (Vercel,
    // Lambda) there is no such server here, and the platform's X-Forwarded-For is read as it comes.
    const { trustPeerAddress } = await import("./lib/http/clientAddress");
    trustPeerAddress((await import("node:http")).Server.prototype, trustedProxyHops);
    trustPeerAddress((await import("node:https")).Server.prototype, trustedProxyHops);
    // Malformed URLs, methods a route does not serve, absolute-form targets: answered as JSON
    // errors before Next.js turns them into 500s or foreign redirects (lib/http/rawRequest.ts).
    const { guardRawRequests } = await import("./lib/http/rawRequest");
    guardRawRequests((await import("node:http")).Server.prototype);
    guardRawRequests((await import("node:https")).Server.prototype);
    // Server actions' answers without no-store, which makes Chromium log them as aborted
    // (lib/http/actionResponses.ts).
    const { actionResponsesWithoutNoStore } = await import("./lib/http/actionResponses");
    actionResponsesWithoutNoStore((await import("node:http")).Server.prototype);
    actionResponsesWithoutNoStore((await import("node:https")).Server.prototype);
    // Open the database and apply migrations now rather than on the first request. If Postgres is
    // down the server still starts: requests answer 503 until it is back, then the store opens.
    // The store reports to the metrics registry from the start (createTaskStoreFromEnv).
    const { getTaskStore } = await import("./lib/taskStore");
    await getTaskStore().catch(() => undefined);
  }
}
