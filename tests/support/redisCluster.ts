import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { canConnect, freePort } from "../../scripts/lib/services.mjs";

/**
 * A private Redis Cluster (3 masters + 3 replicas by default) of real redis-server processes on
 * free ports, each with its own directory, for the cluster driver's tests. The shared Redis on
 * 6379 is never touched. A node can be killed and restarted (it keeps its nodes.conf, so it
 * rejoins, but no data: no snapshot, no AOF, and replicas load a sync without writing it to disk,
 * as a cache's nodes should run), so failover is tested for real; slots can be moved, and a
 * replica's link cut, while the app runs.
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
  /** The port of the master serving `slot`, and of its replicas (as the first live node sees them). */
  masterOf(slot: number): Promise<{ master: number; replicas: number[] }>;
  /**
   * Moves `slots` to the master on `toPort`, key by key, as `redis-cli --cluster reshard` does
   * (SETSLOT IMPORTING / MIGRATING, MIGRATE in batches, SETSLOT NODE on every master), while
   * clients keep using them (they meet ASK and TRYAGAIN meanwhile, MOVED after).
   */
  reshard(slots: number[], toPort: number, options?: { batch?: number; pauseMs?: number }): Promise<void>;
  /**
   * One slot's move to the master on `toPort`, step by step: `migrate` moves `count` of its keys
   * (or the keys named) and says how many it moved; `finish` moves the rest and hands the slot over.
   */
  moveSlot(slot: number, toPort: number): Promise<{ migrate(count: number, only?: string[]): Promise<number>; finish(): Promise<void> }>;
  /**
   * Cuts the replication link of the replica on `port` and keeps it cut (it can no longer
   * authenticate to its master): its master's writes from now on reach no replica, so a failover
   * now promotes a replica without them. `restore` lets it sync again and waits until it has
   * (or until it is a master: promoted meanwhile).
   */
  cutReplication(port: number): Promise<{ restore(): Promise<void> }>;
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

/**
 * `fullCoverage: false` sets cluster-require-full-coverage no: while a master is failing (before
 * its replica is promoted), the other masters go on serving their slots, instead of the whole
 * cluster refusing every command (CLUSTERDOWN), the Redis default.
 */
export async function startRedisCluster({
  masters = 3,
  replicas = 1,
  nodeTimeoutMs = 1000,
  fullCoverage = true,
}: { masters?: number; replicas?: number; nodeTimeoutMs?: number; fullCoverage?: boolean } = {}): Promise<PrivateCluster> {
  const taken = new Set<number>();
  const root = mkdtempSync(path.join(tmpdir(), "wt-cluster-"));
  const nodes: ClusterNode[] = [];
  const makeNode = (port: number): ClusterNode => {
    const dir = path.join(root, String(port));
    const node: ClusterNode = {
      port,
      host: "127.0.0.1",
      child: undefined,
      async start() {
        spawnSync("mkdir", ["-p", dir]);
        const child = spawn(
          "redis-server",
          [
            "--port", String(port),
            "--bind", "127.0.0.1",
            "--cluster-enabled", "yes",
            "--cluster-config-file", path.join(dir, "nodes.conf"),
            "--cluster-node-timeout", String(nodeTimeoutMs),
            "--cluster-replica-validity-factor", "0",
            "--cluster-require-full-coverage", fullCoverage ? "yes" : "no",
            "--save", "",
            "--appendonly", "no",
            // A replica loads a full sync straight from the socket: no dump.rdb is left for a
            // restart to load (which would bring back an old copy, with its old epochs).
            "--repl-diskless-sync", "yes",
            "--repl-diskless-load", "swapdb",
            // A replica that (re)joins syncs at once, not after the default 5 s wait for others:
            // until it has, its master can't confirm writes.
            "--repl-diskless-sync-delay", "0",
            "--dir", dir,
          ],
          { stdio: "ignore" },
        );
        node.child = child;
        for (let j = 0; j < 200 && child.exitCode === null; j++) {
          if (await canConnect("127.0.0.1", port)) {
            // Ours, and not a server someone else started on this port meanwhile (ours then exits).
            if ((await processIdOn(port)) === child.pid) return;
            break;
          }
          await new Promise((r) => setTimeout(r, 25));
        }
        await node.kill("SIGKILL");
        throw new PortTakenError(`cluster node on ${port} did not start (port taken?)`);
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
    return node;
  };
  const fail = async (err: unknown): Promise<never> => {
    await Promise.all(nodes.map((n) => n.kill("SIGKILL")));
    rmSync(root, { recursive: true, force: true });
    throw err;
  };
  for (let i = 0; i < masters * (1 + replicas); i++) {
    // Another process may take a free port before our server binds it: then try another.
    for (let attempt = 0; ; attempt++) {
      const node = makeNode(await clusterPort(taken).catch(fail));
      try {
        await node.start();
        nodes.push(node);
        break;
      } catch (err) {
        if (!(err instanceof PortTakenError) || attempt >= 5) await fail(err);
      }
    }
  }
  const create = spawnSync(
    "redis-cli",
    ["--cluster", "create", ...nodes.map((n) => `127.0.0.1:${n.port}`), "--cluster-replicas", String(replicas), "--cluster-yes"],
    { encoding: "utf8", timeout: 60_000 },
  );
  if (create.status !== 0) await fail(new Error(`redis-cli --cluster create failed: ${create.stdout}\n${create.stderr}`));

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
          if (states.every((s) => s.includes("cluster_state:ok") && s.includes("cluster_slots_assigned:16384")) && (await masterPorts()).length === masters) {
            // And every replica has synced with its master (a write's WAIT counts only those).
            const roles = await Promise.all(alive().map(async (n) => await admin(n.port).info("replication")));
            if (roles.every((r) => r.includes("role:master") || r.includes("master_link_status:up"))) return;
          }
        } catch {
          // a node still starting or failing over
        }
        if (Date.now() > deadline) throw new Error("the cluster did not become healthy");
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    masters: masterPorts,
    async masterOf(slot) {
      const from = alive()[0];
      if (!from) throw new Error("no live cluster node");
      // CLUSTER NODES rather than CLUSTER SLOTS, which leaves out replicas that have no data yet.
      const lines = ((await admin(from.port).call("CLUSTER", "NODES")) as string).split("\n").filter(Boolean).map((l) => l.split(" "));
      const serves = (ranges: string[]) =>
        ranges.some((r) => {
          if (r.startsWith("[")) return false; // a slot being migrated or imported
          const [start, end = start] = r.split("-").map(Number);
          return slot >= (start as number) && slot <= (end as number);
        });
      const master = lines.find((f) => f[2]?.includes("master") && !f[2].includes("fail") && serves(f.slice(8)));
      if (!master) throw new Error(`slot ${slot} is not served`);
      const portOf = (f: string[]) => Number(/:(\d+)@/.exec(f[1] ?? "")?.[1]);
      return { master: portOf(master), replicas: lines.filter((f) => f[3] === master[0] && !f[2]?.includes("fail")).map(portOf) };
    },
    async moveSlot(slot, toPort) {
      const { master: fromPort } = await cluster.masterOf(slot);
      if (fromPort === toPort) throw new Error(`slot ${slot} is on ${toPort} already`);
      const [source, target] = [admin(fromPort), admin(toPort)];
      const [sourceId, targetId] = (await Promise.all([source.call("CLUSTER", "MYID"), target.call("CLUSTER", "MYID")])) as [string, string];
      await target.call("CLUSTER", "SETSLOT", slot, "IMPORTING", sourceId);
      await source.call("CLUSTER", "SETSLOT", slot, "MIGRATING", targetId);
      const migrate = async (count: number, only?: string[]) => {
        const keys = only ?? ((await source.call("CLUSTER", "GETKEYSINSLOT", slot, count)) as string[]);
        if (keys.length > 0) await source.call("MIGRATE", "127.0.0.1", toPort, "", 0, 5000, "KEYS", ...keys);
        return keys.length;
      };
      return {
        migrate,
        async finish() {
          while ((await migrate(1000)) > 0);
          // The target first, then the source (which stops answering ASK), then every other master.
          await target.call("CLUSTER", "SETSLOT", slot, "NODE", targetId);
          await source.call("CLUSTER", "SETSLOT", slot, "NODE", targetId);
          for (const port of await masterPorts()) if (port !== toPort && port !== fromPort) await admin(port).call("CLUSTER", "SETSLOT", slot, "NODE", targetId);
        },
      };
    },
    async reshard(slots, toPort, { batch = 50, pauseMs = 20 } = {}) {
      for (const slot of slots) {
        if ((await cluster.masterOf(slot)).master === toPort) continue;
        const move = await cluster.moveSlot(slot, toPort);
        // A little at a time, so clients meet the slot half moved.
        while ((await move.migrate(batch)) > 0) await new Promise((r) => setTimeout(r, pauseMs));
        await move.finish();
      }
    },
    async cutReplication(port) {
      const replica = admin(port);
      // The master has no password, so AUTH with one fails, and the replica can't resync.
      await replica.call("CONFIG", "SET", "masterauth", "no-such-password");
      await replica.call("CLIENT", "KILL", "TYPE", "master");
      const linked = async () => /master_link_status:up|role:master/.test(await replica.info("replication"));
      for (let i = 0; (await linked()) && i < 100; i++) await new Promise((r) => setTimeout(r, 20));
      if (await linked()) throw new Error(`the replica on ${port} is still linked`);
      return {
        async restore() {
          await replica.call("CONFIG", "SET", "masterauth", "");
          for (let i = 0; !(await linked()); i++) {
            if (i > 300) throw new Error(`the replica on ${port} did not resync`);
            await new Promise((r) => setTimeout(r, 20));
          }
        },
      };
    },
    async stop() {
      for (const client of admins.values()) client.disconnect();
      await Promise.all(nodes.map((n) => n.kill("SIGKILL")));
      rmSync(root, { recursive: true, force: true });
    },
  };
  try {
    await cluster.waitHealthy();
  } catch (err) {
    for (const client of admins.values()) client.disconnect();
    await fail(err);
  }
  return cluster;
}

class PortTakenError extends Error {}

/** The process id of the redis-server answering on `port`. */
async function processIdOn(port: number): Promise<number | undefined> {
  const client = new Redis({ host: "127.0.0.1", port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2000 });
  client.on("error", () => {});
  try {
    await client.connect();
    const info = await client.info("server");
    return Number(/process_id:(\d+)/.exec(info)?.[1]);
  } catch {
    return undefined;
  } finally {
    client.disconnect();
  }
}
