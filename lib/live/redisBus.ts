import "server-only";
import { Cluster, Redis } from "ioredis";
import { parseUserChannel, userCacheKeys } from "../cache/keys";
import { log } from "../log";
import { LocalFanout, type LabChannels, type LiveBus, type LiveChange } from "./bus";

export type RedisBusOptions = {
  prefix: string;
  /** A single Redis (PUBLISH/SUBSCRIBE)... */
  url?: string;
  /** ...or a cluster's seed nodes (SPUBLISH/SSUBSCRIBE: each user's channel lives in that user's slot). */
  clusterNodes?: Array<{ host: string; port: number }>;
  /** A publish that takes longer is given up (the stream's reader rereads after a gap anyway). */
  publishTimeoutMs: number;
};

/**
 * Live updates over Redis pub/sub. Two connections per instance, opened on first use: one that
 * publishes, one in subscriber mode that holds one subscription per user with a stream open here
 * (1,000 streams of one user are one subscription). On a cluster, sharded pub/sub: a user's
 * messages stay on the master that owns their slot instead of being broadcast to every node, and
 * ioredis moves the subscription when the slot moves (failover, reshard). Reconnects resubscribe;
 * what was published meanwhile is lost, so each stream tells its reader to reread when its
 * subscription is (re)established.
 *
 * The cache lab's relay rides the same connections: a user's lab channel (sharded like the
 * user's live channel) and one announcement channel every instance hears (classic pub/sub, which a
 * cluster broadcasts to every node).
 */
export function createRedisBus(options: RedisBusOptions): LiveBus {
  const cluster = options.clusterNodes !== undefined && options.clusterNodes.length > 0;
  const fanout = new LocalFanout();
  const labListeners = new Map<string, Set<(message: string) => void>>();
  const announcementListeners = new Set<(message: string) => void>();
  const announcements = `${options.prefix}:lab-watch`;
  let publisher: Redis | Cluster | undefined;
  let subscriber: Redis | Cluster | undefined;
  const keysOf = (userId: string) => userCacheKeys(options.prefix, userId);
  const connection = (forSubscribing: boolean): Redis | Cluster => {
    const common = {
      connectTimeout: 2_000,
      maxRetriesPerRequest: forSubscribing ? null : 0,
      retryStrategy: (times: number) => Math.min(50 * times, 1_000),
      enableAutoPipelining: !forSubscribing,
    };
    const client = cluster
      ? new Cluster(options.clusterNodes!, {
          redisOptions: common,
          scaleReads: "master",
          shardedSubscribers: forSubscribing,
          clusterRetryStrategy: (times) => Math.min(50 * times, 1_000),
          retryDelayOnFailover: 100,
          retryDelayOnClusterDown: 100,
          retryDelayOnMoved: 0,
        })
      : new Redis(options.url!, common);
    client.on("error", () => {});
    return client;
  };
  const onMessage = (channel: string, message: string) => {
    if (channel === announcements) {
      for (const listener of announcementListeners) listener(message);
      return;
    }
    const parsed = parseUserChannel(options.prefix, channel);
    if (!parsed) return;
    const { userId, kind } = parsed;
    if (kind === "lab") {
      for (const listener of labListeners.get(userId) ?? []) listener(message);
      return;
    }
    let changes: LiveChange[];
    try {
      changes = JSON.parse(message) as LiveChange[];
    } catch {
      return;
    }
    if (Array.isArray(changes)) fanout.deliver(userId, changes);
  };
  const subscriberConnection = (): Redis | Cluster => {
    if (!subscriber) {
      const sub = connection(true);
      sub.on("message", onMessage);
      if (cluster) sub.on("smessage", onMessage);
      // After a lost connection ioredis resubscribes by itself; what was published meanwhile is gone.
      let lost = false;
      sub.on("close", () => (lost = true));
      sub.on("ready", () => {
        if (lost) fanout.gap();
        lost = false;
      });
      subscriber = sub;
    }
    return subscriber;
  };
  const userSubscribe = (channel: string) => {
    const sub = subscriberConnection();
    return cluster ? (sub as Cluster).ssubscribe(channel) : sub.subscribe(channel);
  };
  const userUnsubscribe = (channel: string) => {
    const sub = subscriber;
    if (!sub) return;
    void (cluster ? (sub as Cluster).sunsubscribe(channel) : sub.unsubscribe(channel)).catch(() => undefined);
  };
  /** Publishes within the timeout, or logs and gives up: never throws. */
  const send = async (channel: string, message: string, sharded: boolean, what: string) => {
    publisher ??= connection(false);
    const client = publisher;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        sharded && cluster ? (client as Cluster).spublish(channel, message) : client.publish(channel, message),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error("publish timed out")), options.publishTimeoutMs))),
      ]);
    } catch (err) {
      log.warn(`${what} not published`, { err });
    } finally {
      clearTimeout(timer);
    }
  };
  /** Users whose upstream subscription is being set up: later subscribers wait for it too. */
  const subscribing = new Map<string, Promise<unknown>>();

  const lab: LabChannels = {
    publish: (userId, message) => send(keysOf(userId).labChannel, message, true, "cache lab events"),
    async subscribe(userId, onMessage) {
      let set = labListeners.get(userId);
      const first = !set;
      if (!set) labListeners.set(userId, (set = new Set()));
      set.add(onMessage);
      const channel = keysOf(userId).labChannel;
      if (first) await userSubscribe(channel);
      return () => {
        const listeners = labListeners.get(userId);
        if (!listeners?.delete(onMessage) || listeners.size > 0) return;
        labListeners.delete(userId);
        userUnsubscribe(channel);
      };
    },
    announce: (message) => send(announcements, message, false, "cache lab announcement"),
    async onAnnouncement(onMessage) {
      const first = announcementListeners.size === 0;
      announcementListeners.add(onMessage);
      if (first) await subscriberConnection().subscribe(announcements);
    },
  };

  return {
    kind: cluster ? "redis-cluster" : "redis",
    lab,
    async publish(userId, changes) {
      if (changes.length === 0) return;
      await send(keysOf(userId).liveChannel, JSON.stringify(changes), true, "live update");
    },
    async subscribe(userId, listener) {
      const { first } = fanout.add(userId, listener);
      const channel = keysOf(userId).liveChannel;
      if (first) subscribing.set(userId, userSubscribe(channel));
      try {
        await subscribing.get(userId);
      } catch (err) {
        fanout.remove(userId, listener);
        throw err;
      } finally {
        if (first) subscribing.delete(userId);
      }
      return () => {
        const { last } = fanout.remove(userId, listener);
        if (last) userUnsubscribe(channel);
      };
    },
    async close() {
      publisher?.disconnect();
      subscriber?.disconnect();
    },
  };
}
