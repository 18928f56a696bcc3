import http from "node:http";
import { Redis } from "ioredis";

/**
 * A small local server speaking the Upstash REST protocol in front of a real Redis, so the upstash
 * driver is tested against real Redis semantics: POST / with one command as a JSON array,
 * POST /pipeline and POST /multi-exec with an array of commands, bearer-token auth (wrong or
 * missing token → 401). Replies `{ result }` or `{ error }` (400), as Upstash does.
 */
export type UpstashBridge = { url: string; token: string; requests: () => number; close(): Promise<void> };

export async function startUpstashBridge(redisUrl: string, token = "test-token-0123456789"): Promise<UpstashBridge> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  let count = 0;
  const run = async (command: unknown) => {
    if (!Array.isArray(command) || command.length === 0) throw new Error("ERR command must be a non-empty array");
    const [name, ...args] = command.map(String);
    return redis.call(name as string, ...args);
  };
  const server = http.createServer((req, res) => {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (req.headers.authorization !== `Bearer ${token}`) return reply(401, { error: "Unauthorized" });
    if (req.method !== "POST") return reply(405, { error: "Method not allowed" });
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    const respond = async () => {
      count++;
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        return reply(400, { error: "ERR invalid JSON body" });
      }
      const path = (req.url ?? "/").split("?")[0];
      try {
        if (path === "/" || path === "") return reply(200, { result: await run(body) });
        if (path === "/pipeline") {
          const results = [];
          for (const command of body as unknown[]) {
            try {
              results.push({ result: await run(command) });
            } catch (err) {
              results.push({ error: (err as Error).message });
            }
          }
          return reply(200, results);
        }
        if (path === "/multi-exec") {
          const replies = (await redis.multi((body as unknown[][]).map((c) => c.map(String) as [string, ...string[]])).exec()) ?? [];
          return reply(200, replies.map(([err, result]) => (err ? { error: err.message } : { result })));
        }
        return reply(404, { error: "ERR unknown endpoint" });
      } catch (err) {
        return reply(400, { error: (err as Error).message });
      }
    };
    // respond() answers every failure itself (a 400 with the error), so nothing awaits it.
    req.on("end", () => void respond());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (typeof address !== "object" || !address) throw new Error("bridge has no port");
  return {
    url: `http://127.0.0.1:${address.port}`,
    token,
    requests: () => count,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      redis.disconnect();
    },
  };
}
