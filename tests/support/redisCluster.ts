import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { canConnect, freePort } from "../../scripts/lib/services.mjs";

/**
 * A private Redis Cluster (3 masters + 3 replicas by default) of real redis-server processes on
 * free ports, each with its own directory, for the cluster driver's tests. The shared Redis on
 * 6379 is never touched. A node can be killed and restarted, so failover is tested for real.
 */
export type ClusterNode = { port: number; host: string; child: ChildProcess | undefined; start(): Promise<void>; kill(signal?: NodeJS.Signals): Promise<void> };

export type PrivateCluster = {
  nodes: ClusterNode[];
  /** `host:port,host:port,...`, as REDIS_CLUSTER_NODES takes it. */
  seeds: string;
  /** A plain client to one node, for CLUSTER commands. */
  admin(port: number): Redis;
  /** Waits until every node says cluster_state:ok and agrees on 3 masters covering all slots. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** Ports of the current masters (as node `port` sees them). */
  masters(): Promise<number[]>;
  stop(): Promise<void>;
};

/** A free port whose cluster bus port (+10000) is free too and below 65536. */
async function clusterPort(taken: Set<number>): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = await freePort();
    if (port > 55_535 || taken.has(port) || taken.has(port + 10_000)) continue;
    if (await canConnect("127.0.0.1", port + 10_000)) continue;
    taken.add(port);
    taken.add(port + 10_000);
    return port;
  }
  throw new Error("no free port pair for a cluster node");
}

export function redisServerAvailable(): boolean {
  return spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status === 0 && spawnSync("redis-cli", ["--version"], { stdio: "ignore" }).status === 0;
}

export async function startRedisCluster({ masters = 3, replicas = 1, nodeTimeoutMs = 1000 }: { masters?: number; replicas?: number; nodeTimeoutMs?: number } = {}): Promise<PrivateCluster> {
  const taken = new Set<number>();
  const root = mkdtempSync(path.join(tmpdir(), "wt-cluster-"));
  const nodes: ClusterNode[] = [];
  for (let i = 0; i < masters * (1 + replicas); i++) {
    const port = await clusterPort(taken);
    const dir = path.join(root, String(port));
    const node: ClusterNode = {
      port,
      host: "127.0.0.1",
      child: undefined,
      async start() {
        spawnSync("mkdir", ["-p", dir]);
        node.child = spawn(
          "redis-server",
          [
            "--port", String(port),
            "--bind", "127.0.0.1",
            "--cluster-enabled", "yes",
            "--cluster-config-file", path.join(dir, "nodes.conf"),
            "--cluster-node-timeout", String(nodeTimeoutMs),
            "--cluster-replica-validity-factor", "0",
            "--save", "",
            "--appendonly", "no",
            "--dir", dir,
          ],
          { stdio: "ignore" },
        );
        for (let j = 0; j < 200; j++) {
          if (await canConnect("127.0.0.1", port)) return;
          await new Promise((r) => setTimeout(r, 25));
        }
        throw new Error(`cluster node on ${port} did not start`);
      },
      async kill(signal = "SIGKILL") {
        const c = node.child;
        if (!c || c.exitCode !== null || c.signalCode !== null) return;
        await new Promise<void>((resolve) => {
          c.once("exit", () => resolve());
          c.kill(signal);
        });
      },
    };
    nodes.push(node);
  }
  await Promise.all(nodes.map((n) => n.start()));
  const create = spawnSync(
    "redis-cli",
    ["--cluster", "create", ...nodes.map((n) => `127.0.0.1:${n.port}`), "--cluster-replicas", String(replicas), "--cluster-yes"],
    { encoding: "utf8", timeout: 60_000 },
  );
  if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}\n${create.stderr}`);

  const admins = new Map<number, Redis>();
  const admin = (port: number) => {
    let client = admins.get(port);
    if (!client) {
      client = new Redis({ host: "127.0.0.1", port, lazyConnect: false, maxRetriesPerRequest: 1, retryStrategy: () => 200 });
      client.on("error", () => {});
      admins.set(port, client);
    }
    return client;
  };
  const alive = () => nodes.filter((n) => n.child && n.child.exitCode === null && n.child.signalCode === null);
  const masterPorts = async (): Promise<number[]> => {
    const from = alive()[0];
    if (!from) return [];
    const text = (await admin(from.port).call("CLUSTER", "NODES")) as string;
    return text
      .split("\n")
      .filter((line) => / master /.test(` ${line.split(" ")[2]?.replace(/,/g, " ")} `) && !line.includes("fail"))
      .map((line) => Number(/:(\d+)@/.exec(line)?.[1]))
      .filter((p) => Number.isFinite(p))
      .sort((a, b) => a - b);
  };
  const cluster: PrivateCluster = {
    nodes,
    seeds: nodes.map((n) => `127.0.0.1:${n.port}`).join(","),
    admin,
    async waitHealthy(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        try {
          const states = await Promise.all(alive().map(async (n) => (await admin(n.port).call("CLUSTER", "INFO")) as string));
          if (states.every((s) => s.includes("cluster_state:ok") && s.includes("cluster_slots_assigned:16384")) && (await masterPorts()).length === masters) return;
        } catch {
          // a node still starting or failing over
        }
        if (Date.now() > deadline) throw new Error("the cluster did not become healthy");
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    masters: masterPorts,
    async stop() {
      for (const client of admins.values()) client.disconnect();
      await Promise.all(nodes.map((n) => n.kill("SIGKILL")));
      rmSync(root, { recursive: true, force: true });
    },
  };
  await cluster.waitHealthy();
  return cluster;
}
