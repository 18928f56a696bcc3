import { spawn, type ChildProcess } from "node:child_process";
import { canConnect, freePort } from "../../scripts/lib/services.mjs";

// Kept here too for the tests that import it from this file.
export { freePort };

/**
 * A private redis-server on a free port, for tests that pause, kill or restart Redis: the shared
 * server on 6379 is never touched by them.
 */
export type PrivateRedis = {
  url: string;
  port: number;
  stop(signal?: NodeJS.Signals): Promise<void>;
  start(): Promise<void>;
};

export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
      stdio: "ignore",
    });
    for (let i = 0; i < 100; i++) {
      if (await canConnect("127.0.0.1", port)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`private redis-server on ${port} did not start`);
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    start,
    async stop(signal = "SIGTERM") {
      const c = child;
      if (!c || c.exitCode !== null) return;
      await new Promise<void>((resolve) => {
        c.once("exit", () => resolve());
        c.kill(signal);
      });
    },
  };
}
