import "server-only";
import { createHash } from "node:crypto";
import { Cluster, Redis, type RedisOptions } from "ioredis";
import { TIMEOUT_STRETCH } from "../breaker";
import { log } from "../log";
import { createScriptedDriver, type RedisTransport, type ScriptedDriverOptions } from "./scripted";
import { CacheSlotMovingError, CacheUnavailableError, type CacheDriver } from "./types";

export type RedisDriverOptions = ScriptedDriverOptions & {
  url: string;
  /**
   * The breaker's per-call timeout (CACHE_TIMEOUT_MS). ioredis' own commandTimeout is a backstop
   * TIMEOUT_STRETCH times longer: its timer can't tell a slow Redis from a stalled event loop, so it
   * must not fire before the breaker's, which can (docs/decisions/017-timeouts-that-starvation-cant-fire.md).
   */
  commandTimeoutMs: number;
};

function clientOptions(options: { commandTimeoutMs: number }): RedisOptions {
  return {
    commandTimeout: options.commandTimeoutMs * TIMEOUT_STRETCH,
    connectTimeout: Math.max(1000, options.commandTimeoutMs * 4),
    enableOfflineQueue: true,
    maxRetriesPerRequest: 0,
    // Keep reconnecting for ever, backing off to 1 s, so the app uses Redis again when it returns.
    retryStrategy: (times) => Math.min(50 * times, 1000),
    // Commands issued in the same tick (a list page's fills) share one round trip.
    enableAutoPipelining: true,
  };
}

/** The redis driver: ioredis over TCP, for docker-compose and long-lived servers. */
export function createRedisDriver(options: RedisDriverOptions): CacheDriver & { client: Redis } {
  const client = new Redis(options.url, clientOptions(options));
  // ioredis emits 'error' on every failed reconnect; the breaker logs state changes instead.
  client.on("error", () => {});
  return Object.assign(createScriptedDriver("redis", transportOf(client, options), options), { client });
}

export type RedisClusterDriverOptions = ScriptedDriverOptions & {
  /** Seed nodes (`host:port`); the client learns the rest of the cluster from them. */
  nodes: Array<{ host: string; port: number }>;
  commandTimeoutMs: number;
  /**
   * Replicas of a master that must have a write that has to survive a failover (WAIT) before it
   * counts as written: the number of replicas each master has, since any of them may be promoted.
   * Default 1; 0 turns confirmation off (a failover may then lose acknowledged writes).
   */
  waitReplicas?: number;
  /** How long such a write waits for them (WAIT's timeout): default 100 ms, at most half the command timeout. */
  waitTimeoutMs?: number;
};

/**
 * The redis driver on a Redis Cluster: ioredis' Cluster client, which follows MOVED and ASK
 * redirects and refreshes the slot map on failover. The same Lua scripts run unchanged: every key
 * a script touches is one user's, under one hash tag, so in one slot. Reads and writes go to
 * masters only (a replica may lag its master, which would break read-your-writes; ADR 014), and a
 * write that must survive a failover counts as written only once the master's replicas have it.
 */
export function createRedisClusterDriver(options: RedisClusterDriverOptions): CacheDriver & { client: Cluster } {
  const client = new Cluster(options.nodes, {
    // No auto-pipelining, on the cluster or its node connections (ioredis 6): a node's auto-
    // pipeline sends the ASKING of an ASK redirect after the command it was for (so it applies to
    // whatever comes next), and after a MOVED the cluster's auto-pipelines can mix slots whose
    // groups now differ, failing every command in them. Commands still share round trips: they
    // are written without waiting for replies, and confirmed writes go in explicit pipelines.
    redisOptions: { ...clientOptions(options), enableAutoPipelining: false },
    scaleReads: "master",
    enableOfflineQueue: true,
    enableAutoPipelining: false,
    // Keep trying for ever, backing off to 1 s, as the single-node client does.
    clusterRetryStrategy: (times) => Math.min(50 * times, 1000),
    // A failover or a reshard moves slots: follow MOVED at once, and retry a command that met
    // CLUSTERDOWN or TRYAGAIN (a slot being migrated) briefly rather than failing it. Briefly:
    // TRYAGAIN lasts as long as the slot's move, and a call still refused after ~100 ms fails
    // as "slot moving" (not a cache failure) and goes to Postgres, before it would time out and
    // count against the breaker.
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 20,
    retryDelayOnMoved: 0,
    maxRedirections: 6,
    slotsRefreshTimeout: Math.max(1000, options.commandTimeoutMs * 4),
  });
  client.on("error", () => {});
  const replicas = options.waitReplicas ?? 1;
  const confirmer =
    replicas > 0
      ? createConfirmer(client, { replicas, timeoutMs: Math.max(1, Math.min(options.waitTimeoutMs ?? 100, Math.floor(options.commandTimeoutMs / 2))) })
      : undefined;
  const topology = watchCluster(client);
  return Object.assign(createScriptedDriver("redis", transportOf(client, options, { confirmer, ...topology }), options), {
    client,
    onTopologyChange: topology.onChange,
  });
}

/** How often a command is let through to a master whose connection was lost, to see whether it is back. */
const NODE_PROBE_MS = 500;

/**
 * What the cluster driver keeps about the cluster's nodes (ADR 014):
 * - Which master this client last used for each slot it touched. A slot whose master changed (a
 *   failover promoted a replica, or a reshard moved it) is reported, once a second per pair of
 *   masters, to the onTopologyChange listeners, and the read that found it is not trusted: a
 *   promoted replica may lack writes that were acknowledged without it (their repairs are
 *   recorded), so the store first reads the repair ledger again.
 * - Which masters' connections were lost (ioredis drops a node's connection when it fails, and
 *   doesn't reconnect to it). A command for one of their slots fails at once, as "node-down", which
 *   the breaker doesn't count: one dead master sends its slots' reads to Postgres and fails its
 *   slots' writes (repairs owed), and leaves every other master's users on the cache. Every
 *   NODE_PROBE_MS one command goes through, and the first that is answered ends it; a failover
 *   moves the slots to another master, which is not affected.
 */
function watchCluster(client: Cluster) {
  const owners = new Map<number, string>();
  const reported = new Map<string, number>();
  const listeners = new Set<() => void>();
  /** Masters whose connection was lost, with when the next command may go through to probe them. */
  const lost = new Map<string, number>();
  /**
   * Slots whose master's connection was lost: whichever node answers for one of them next (the
   * promoted replica, found through a MOVED or, as ioredis does when the slot's node is gone from
   * its pool, by asking a random node that turns out to own it) is not trusted until the repair
   * ledger has been read again. Marked for every slot the lost master served, touched or not.
   */
  const suspect = new Set<number>();
  client.on("-node", (redis: Redis) => {
    const node = `${redis.options.host}:${redis.options.port}`;
    if (!lost.has(node)) lost.set(node, Date.now() + NODE_PROBE_MS);
    client.slots.forEach((nodes, slot) => {
      if (nodes?.[0] === node) suspect.add(slot);
    });
  });
  const nodeOf = (key: string) => client.slots[slotOf(key)]?.[0];
  return {
    /** Before a command on `key`: throws at once when its slot's master is lost (but lets a probe through now and then). */
    guard: (key: string): void => {
      const node = nodeOf(key);
      const probeAt = node === undefined ? undefined : lost.get(node);
      if (probeAt === undefined) return;
      if (Date.now() < probeAt) throw new CacheUnavailableError(`cache cluster master ${node} unreachable`, "node-down");
      lost.set(node as string, Date.now() + NODE_PROBE_MS);
    },
    /** After a command on `key` was answered: its slot's master is reachable. */
    answered: (key: string): void => {
      const node = nodeOf(key);
      if (node !== undefined && lost.delete(node)) log.info("cache cluster master reachable again", { node });
    },
    /** After a command on `key`: whether its slot is now on another master than the last time. */
    moved: (key: string): boolean => {
      const slot = slotOf(key);
      const now = client.slots[slot]?.[0];
      const before = owners.get(slot);
      if (now !== undefined) owners.set(slot, now);
      const wasSuspect = suspect.delete(slot);
      if (!wasSuspect && (now === undefined || before === undefined || before === now)) return false;
      const pair = wasSuspect ? `${before ?? "?"} (lost) -> ${now ?? "?"}` : `${before} -> ${now}`;
      if (Date.now() - (reported.get(pair) ?? -Infinity) >= 1000) {
        reported.set(pair, Date.now());
        log.info("cache cluster slots moved to another master; repairs are read again before the cache is trusted", { from: before, to: now });
        for (const listener of listeners) listener();
      }
      return true;
    },
    onChange: (listener: () => void): (() => void) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

function slotMoved(): CacheUnavailableError {
  return new CacheUnavailableError("cache slot now on another master: not trusted until the repair ledger is read again", "unconfirmed");
}

type Command = [name: string, ...args: Array<string | number>];
type Reply = [Error | null, unknown];

/**
 * Confirmed writes on a cluster (ADR 014). Replication is asynchronous: a master that dies may
 * not yet have sent its last writes to the replica promoted in its place. So a write that must
 * survive that is sent in one pipeline with `WAIT <replicas> <timeoutMs>`. A pipeline goes to one
 * node, on one connection, and is resent whole when that connection drops, so the WAIT always
 * follows the write on the connection that carried it and counts the replicas that have it (and
 * everything sent on that connection before it). Fewer than asked for, an error, or a redirect,
 * and the write is unconfirmed: the caller records a repair, as for a failed write.
 *
 * Redis blocks a connection while it WAITs, so writes to a master are group-committed: while
 * one WAIT is out to a master, the writes for it queue and go in the next pipeline, behind one
 * WAIT for all of them. A master whose replicas don't answer (none left after a failover, until
 * the failed node comes back as a replica) would hold every pipeline for the whole timeout:
 * after a shortfall, writes to it are sent without waiting (unconfirmed at once), and one WAIT a
 * PROBE_MS checks whether its replicas are back.
 */
function createConfirmer(client: Cluster, { replicas, timeoutMs }: { replicas: number; timeoutMs: number }) {
  const PROBE_MS = 500;
  type Job = { key: string; commands: Command[]; settle(replies: Reply[], confirmed: boolean): void; fail(err: unknown): void; alone?: boolean };
  /** One per master (by the slot map when queued): its queue, whether a pipeline is out, and when a short master is probed next. */
  type Lane = { node: string; queue: Job[]; sending: boolean; probeAt?: number };
  const lanes = new Map<string, Lane>();

  const enqueue = (job: Job) => {
    const node = client.slots[slotOf(job.key)]?.[0] ?? "?";
    let lane = lanes.get(node);
    if (!lane) lanes.set(node, (lane = { node, queue: [], sending: false }));
    lane.queue.push(job);
    send(lane);
  };

  const send = (lane: Lane) => {
    if (lane.sending || lane.queue.length === 0) return;
    // Everything queued goes in one pipeline, except that a job sent again after its batch was refused goes alone.
    const alone = lane.queue.findIndex((j) => j.alone);
    const jobs = lane.queue.splice(0, alone === 0 ? 1 : alone < 0 ? lane.queue.length : alone);
    const now = Date.now();
    const waits = lane.probeAt === undefined || now >= lane.probeAt;
    if (waits && lane.probeAt !== undefined) lane.probeAt = now + PROBE_MS;
    const pipeline = client.pipeline();
    for (const job of jobs) for (const [name, ...args] of job.commands) pipeline.call(name, ...args);
    if (waits) pipeline.call("WAIT", replicas, timeoutMs);
    lane.sending = true;
    pipeline
      .exec()
      .then((replies) => {
        const all = (replies ?? []) as Reply[];
        let confirmed = false;
        if (waits) {
          const [err, acked] = all[all.length - 1] ?? [new Error("no reply to WAIT"), 0];
          confirmed = !err && Number(acked) >= replicas;
          if (confirmed && lane.probeAt !== undefined) {
            lane.probeAt = undefined;
            log.info("cache cluster master confirms writes again", { node: lane.node });
          } else if (!err && !confirmed && lane.probeAt === undefined) {
            lane.probeAt = Date.now() + PROBE_MS;
            log.warn("cache cluster master lacks replicas: its writes count as unwritten (repairs owed) until they are back", { node: lane.node, replicas, acked });
          }
        }
        let at = 0;
        for (const job of jobs) {
          job.settle(all.slice(at, at + job.commands.length), confirmed);
          at += job.commands.length;
        }
      }, (err: unknown) => {
        // The whole pipeline was refused: most likely the slot map changed since these jobs were
        // queued, so their keys are no longer on one master. Each is tried once more, alone.
        for (const job of jobs) {
          if (jobs.length > 1 && !job.alone) enqueue({ ...job, alone: true });
          else job.fail(err);
        }
      })
      .finally(() => {
        lane.sending = false;
        send(lane);
      });
  };

  /**
   * Runs `commands` (all in the slot of `key`) confirmed; resolves with the last one's reply.
   * `fallback` sends the same write the ordinary way, which follows redirects: when the pipeline
   * met one (the slot moved, or the cluster is failing over), the write still goes where the
   * slot now is, but counts as unconfirmed. A slot being migrated (ASK, TRYAGAIN) refuses a
   * command on several keys until the move is done: with `severalKeys`, that fails at once
   * (CacheSlotMovingError); one-key commands take the fallback. `retry` replaces the commands
   * once (EVAL for an EVALSHA that met NOSCRIPT).
   */
  const run = (key: string, commands: Command[], fallback: () => Promise<unknown>, { retry, severalKeys = false }: { retry?: Command[]; severalKeys?: boolean } = {}): Promise<unknown> =>
    new Promise<unknown>((resolve, reject) => {
      enqueue({
        key,
        commands,
        fail: reject,
        settle(replies, confirmed) {
          const failed = replies.find(([err]) => err)?.[0];
          if (failed && retry && failed.message.startsWith("NOSCRIPT")) return resolve(run(key, retry, fallback, { severalKeys }));
          if (failed && severalKeys && /^(ASK|TRYAGAIN) /.test(failed.message)) return reject(new CacheSlotMovingError());
          if (failed && /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN) /.test(failed.message)) {
            return resolve(fallback().then(() => Promise.reject(unconfirmed(`redirected (${failed.message.split(" ")[0]})`))));
          }
          if (failed) return reject(failed);
          if (!confirmed) return reject(unconfirmed(`fewer than ${replicas} replica(s) have it`));
          resolve(replies[replies.length - 1]?.[1]);
        },
      });
    });
  return { run };
}

function unconfirmed(why: string): CacheUnavailableError {
  return new CacheUnavailableError(`cache write not confirmed by the master's replicas: ${why}`, "unconfirmed");
}

/** The cluster slot of a key (CRC16/XMODEM of its hash tag, or of the whole key), as Redis computes it. */
export function slotOf(key: string): number {
  const open = key.indexOf("{");
  const close = open < 0 ? -1 : key.indexOf("}", open + 1);
  const hashed = Buffer.from(close > open + 1 ? key.slice(open + 1, close) : key);
  let crc = 0;
  for (const byte of hashed) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}

/**
 * The transport over one ioredis client (a single Redis, or a Cluster). On a cluster, anything that
 * walks the keyspace visits every master, and a delete of many keys is sent key by key (they may be
 * in different slots); everything else already stays in one slot.
 */
function transportOf(
  client: Redis | Cluster,
  _options: { commandTimeoutMs: number },
  cluster?: { confirmer?: ReturnType<typeof createConfirmer> } & Pick<ReturnType<typeof watchCluster>, "moved" | "guard" | "answered">,
): RedisTransport {
  const isCluster = cluster !== undefined;
  const confirmer = cluster?.confirmer;
  /** Runs a command the ordinary way; on a cluster, a refusal because its slot is being migrated (still TRYAGAIN once ioredis' retries are used up) becomes a CacheSlotMovingError. */
  const sent = async <T>(command: () => Promise<T>): Promise<T> => {
    try {
      return await command();
    } catch (err) {
      if (isCluster && err instanceof Error && /TRYAGAIN|^ASK /.test(err.message)) throw new CacheSlotMovingError();
      throw err;
    }
  };
  /** Before a command on `key`, on a cluster: fails at once when its master is lost (see watchCluster). */
  const guard = (key: string | undefined) => {
    if (key !== undefined) cluster?.guard(key);
  };
  /** A read's answer, unless its slot just moved to another master (then it throws: see watchCluster). */
  const trusted = <T>(key: string | undefined, value: T): T => {
    if (key === undefined || !cluster) return value;
    cluster.answered(key);
    if (cluster.moved(key)) throw slotMoved();
    return value;
  };
  /** A write's outcome stands; its slot's master is noted. */
  const noted = <T>(key: string | undefined, value: T): T => {
    if (key !== undefined && cluster) {
      cluster.answered(key);
      cluster.moved(key);
    }
    return value;
  };
  // While Redis is known to be unreachable, fail at once instead of queueing each command until
  // it times out: the breaker's half-open probe then costs nothing, and requests read Postgres at
  // Postgres speed. Only the very first connection attempt may queue, so a store that starts
  // with Redis up can use it from its first request.
  let firstAttempt = true;
  client.on("ready", () => (firstAttempt = false));
  client.on("close", () => (firstAttempt = false));
  const connected = () => {
    if (client.status !== "ready" && !firstAttempt) throw new CacheUnavailableError("redis is not connected");
  };
  const shas = new Map<string, string>();
  const shaOf = (script: string) => {
    let sha = shas.get(script);
    if (!sha) shas.set(script, (sha = createHash("sha1").update(script).digest("hex")));
    return sha;
  };

  return {
    async get(key) {
      connected();
      guard(key);
      return trusted(key, await sent(() => client.get(key)));
    },
    async set(key, value, { ttlSeconds, onlyIfAbsent = false, confirm = false } = {}) {
      connected();
      guard(key);
      if (confirm && confirmer) {
        const command: Command = ["set", key, value, ...(ttlSeconds === undefined ? [] : ["EX", ttlSeconds]), ...(onlyIfAbsent ? ["NX"] : [])];
        return noted(key, await confirmer.run(key, [command], () => client.call(...command))) === "OK";
      }
      const reply = await sent(() =>
        ttlSeconds === undefined
          ? onlyIfAbsent
            ? client.set(key, value, "NX")
            : client.set(key, value)
          : onlyIfAbsent
            ? client.set(key, value, "EX", ttlSeconds, "NX")
            : client.set(key, value, "EX", ttlSeconds),
      );
      return noted(key, reply) === "OK";
    },
    async mget(keys) {
      connected();
      guard(keys[0]);
      // One user's keys (one slot) on a cluster.
      return trusted(keys[0], await sent(() => client.mget(keys)));
    },
    async evalScript(script, keys, args, { confirm = false } = {}) {
      connected();
      guard(keys[0]);
      if (confirm && confirmer && keys[0] !== undefined) {
        const call = (name: "evalsha" | "eval"): Command => [name, name === "evalsha" ? shaOf(script) : script, keys.length, ...keys, ...args];
        const normally = () =>
          sent(() =>
            client.evalsha(shaOf(script), keys.length, ...keys, ...args).catch((err: unknown) => {
              if (err instanceof Error && err.message.startsWith("NOSCRIPT")) return client.eval(script, keys.length, ...keys, ...args);
              throw err;
            }),
          );
        return noted(keys[0], await confirmer.run(keys[0], [call("evalsha")], normally, { retry: [call("eval")], severalKeys: keys.length > 1 }));
      }
      let reply: unknown;
      try {
        reply = await sent(() => client.evalsha(shaOf(script), keys.length, ...keys, ...args));
      } catch (err) {
        // After a restart or SCRIPT FLUSH Redis no longer knows the script: send it whole once.
        if (!(err instanceof Error && err.message.startsWith("NOSCRIPT"))) throw err;
        reply = await sent(() => client.eval(script, keys.length, ...keys, ...args));
      }
      // The reads (views, epoch) and the unconfirmed writes (fills, builds): an answer from a slot
      // that just moved is not used.
      return trusted(keys[0], reply);
    },
    async scan(cursor, match, count) {
      connected();
      if (!(client instanceof Cluster)) return client.scan(cursor, "MATCH", match, "COUNT", count);
      // One cursor over every master in turn: "<master index>:<that master's cursor>". A reshard
      // while a walk runs may show a key twice or not at all; the walks (audits, clean-up) allow it.
      const masters = client.nodes("master").sort((a, b) => `${a.options.host}:${a.options.port}`.localeCompare(`${b.options.host}:${b.options.port}`));
      const [at, inner] = cursor === "0" ? [0, "0"] : (cursor.split(":") as [string, string]);
      const index = Number(at);
      const node = masters[index];
      if (!node) return ["0", []];
      const [next, keys] = await node.scan(inner, "MATCH", match, "COUNT", count);
      if (next !== "0") return [`${index}:${next}`, keys];
      return [index + 1 < masters.length ? `${index + 1}:0` : "0", keys];
    },
    async del(keys, { confirm = false } = {}) {
      connected();
      if (keys.length === 0) return;
      guard(keys[0]);
      if (confirm && confirmer) {
        // One confirmed pipeline per slot (one user's keys: one; a flush's batch: one per slot).
        const bySlot = new Map<number, string[]>();
        for (const k of keys) bySlot.set(slotOf(k), [...(bySlot.get(slotOf(k)) ?? []), k]);
        const groups = [...bySlot.values()];
        await Promise.all(groups.map((group) => confirmer.run(group[0] as string, group.map((k) => ["unlink", k]), () => Promise.all(group.map((k) => client.unlink(k))))));
        noted(keys[0], undefined);
        return;
      }
      if (isCluster) await sent(() => Promise.all(keys.map((k) => client.unlink(k))));
      else await client.unlink(...keys);
    },
    async ttls(keys) {
      connected();
      // One user's keys (one slot), so a pipeline is fine on a cluster too.
      const replies = await client.pipeline(keys.map((k) => ["ttl", k])).exec();
      return (replies ?? []).map(([err, value]) => (err ? -2 : Number(value)));
    },
    async ping() {
      connected();
      await client.ping();
    },
    async close() {
      client.disconnect();
    },
  };
}
