import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createMemoryBus, type LiveBus, type LiveChange } from "@/lib/live/bus";
import { createRedisBus } from "@/lib/live/redisBus";
import { listTasks, taskEvents, type TasksFor } from "@/lib/http/taskHandlers";
import { TaskError } from "@/lib/tasks/errors";
import type { TaskStore } from "@/lib/taskStore";
import { BACKENDS, createTestEnv, testWhere, type TestEnv } from "../support/backends";
import { redisServerAvailable, startRedisCluster, type PrivateCluster } from "../support/redisCluster";
import { TEST_REDIS_URL } from "../support/services";
import { until as waitUntil } from "../support/wait";

// Live updates (issue 11, item 4): the write-through path publishes each committed change on the
// owner's channel and every instance relays it to that owner's open event streams. Two stores here
// are two app instances; on Redis each has its own bus connections, so a change made on one reaches
// a stream opened on the other only through Redis.

type Received = { changes: LiveChange[]; gaps: number };

function collector(): Received & { listener: { onChanges(c: LiveChange[]): void; onGap(): void } } {
  const got: Received = { changes: [], gaps: 0 };
  return Object.assign(got, {
    listener: {
      onChanges: (c: LiveChange[]) => void got.changes.push(...c),
      onGap: () => void got.gaps++,
    },
  });
}

/** Live messages arrive within milliseconds: 3 s unless a case says otherwise. */
const until = (check: () => boolean, what: string, limitMs = 3_000) => waitUntil(check, what, limitMs, 10);

/** Reads Server-Sent Events off a response body as they come. */
function sseReader(res: Response) {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  const events: Array<{ event: string; id?: string; data: string }> = [];
  let ended = false;
  const pump = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const fields = Object.fromEntries(
          block
            .split("\n")
            .filter((l) => l && !l.startsWith(":"))
            .map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 1).trimStart()]),
        ) as Record<string, string>;
        if (fields.event || fields.data) events.push({ event: fields.event ?? "message", id: fields.id, data: fields.data ?? "" });
      }
    }
    ended = true;
  })().catch(() => (ended = true));
  return {
    events,
    get ended() {
      return ended;
    },
    changes: () => events.filter((e) => e.event === "change").map((e) => JSON.parse(e.data) as LiveChange),
    cancel: () => reader.cancel().catch(() => undefined),
    pump,
  };
}

const stacks = [
  { name: "redis (PUBLISH/SUBSCRIBE)", backend: BACKENDS.find((b) => b.cacheDriver === "redis")! },
  { name: "memory (one process)", backend: BACKENDS.find((b) => b.cacheDriver === "memory")! },
];

for (const { name, backend } of stacks) {
  describe(`live updates on ${name}`, () => {
    let env: TestEnv;
    let a: TaskStore;
    let b: TaskStore;
    let busA: LiveBus;
    let busB: LiveBus;

    beforeAll(async () => {
      env = await createTestEnv(backend);
      if (backend.cacheDriver === "redis") {
        busA = createRedisBus({ prefix: env.prefix, url: TEST_REDIS_URL, publishTimeoutMs: 1_000 });
        busB = createRedisBus({ prefix: env.prefix, url: TEST_REDIS_URL, publishTimeoutMs: 1_000 });
      } else {
        busA = busB = createMemoryBus();
      }
      a = await env.openStore({ live: busA });
      b = await env.openStore({ live: busB });
    });
    afterAll(async () => {
      await env.cleanup();
    });

    test("every kind of write on one instance reaches the owner's subscription on the other, in order, with the new state", async () => {
      const got = collector();
      const end = await busA.subscribe(env.userId, got.listener);
      try {
        const tasks = b.forUser(env.userId);
        const made = await tasks.create({ title: "heard elsewhere", dueOn: "2031-02-03" });
        const renamed = await tasks.update({ id: made.id, patch: { title: "renamed elsewhere" } });
        await tasks.remove({ id: made.id });
        const back = await tasks.restore(made.id);
        const other = await tasks.create({ title: "second" });
        const batch = await tasks.batch({ op: "complete", ids: [made.id, other.id] });
        await until(() => got.changes.length >= 7, "7 changes");
        expect(got.changes.slice(0, 5).map((c) => [c.op, c.id, c.version])).toEqual([
          ["create", made.id, 1],
          ["update", made.id, 2],
          ["delete", made.id, 3],
          ["restore", made.id, 4],
          ["create", other.id, 1],
        ]);
        // The batch is one message (in the order Postgres returned its rows).
        const batched = got.changes.slice(5).sort((x, y) => x.id - y.id);
        expect(batched.map((c) => [c.op, c.id, c.version])).toEqual([
          ["update", made.id, 5],
          ["update", other.id, 2],
        ]);
        expect(got.changes[0]!.task).toEqual(made);
        expect(got.changes[1]!.task).toEqual(renamed);
        expect(got.changes[2]!.task).toBeUndefined();
        expect(got.changes[3]!.task).toEqual(back);
        expect(batched.map((c) => c.task)).toEqual("tasks" in batch ? [...batch.tasks].sort((x, y) => x.id - y.id) : []);
        // Published after the write-through: the news, read at once through the cache, is the new version.
        expect(await a.forUser(env.userId).get(made.id)).toEqual({ task: batched[0]!.task, cache: "HIT" });
      } finally {
        end();
      }
    });

    test("a user hears only their own changes, and nothing after unsubscribing", async () => {
      const other = await env.createUser("neighbour");
      const mine = collector();
      const theirs = collector();
      const endMine = await busA.subscribe(env.userId, mine.listener);
      const endTheirs = await busA.subscribe(other, theirs.listener);
      await b.forUser(other).create({ title: "not for you" });
      await b.forUser(env.userId).create({ title: "for you" });
      await until(() => mine.changes.length === 1 && theirs.changes.length === 1, "one change each");
      expect(mine.changes[0]!.task!.title).toBe("for you");
      expect(theirs.changes[0]!.task!.title).toBe("not for you");
      endMine();
      await b.forUser(env.userId).create({ title: "after you left" });
      await b.forUser(other).create({ title: "a marker" });
      await until(() => theirs.changes.length === 2, "the marker");
      expect(mine.changes).toHaveLength(1);
      endTheirs();
    });

    test("GET /api/tasks/events: ready once subscribed, then each change as an event with an id, from the other instance; ends when the reader goes", async () => {
      const controller = new AbortController();
      const tasksFor: TasksFor = async () => a.forUser(env.userId);
      const res = await taskEvents(tasksFor, new Request("http://x/api/tasks/events", { signal: controller.signal }));
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
      expect(res.headers.get("cache-control")).toContain("no-cache");
      const stream = sseReader(res);
      await until(() => stream.events.some((e) => e.event === "ready"), "ready");
      const made = await b.forUser(env.userId).create({ title: "streamed" });
      await b.forUser(env.userId).update({ id: made.id, patch: { done: true } });
      await until(() => stream.changes().length === 2, "two change events");
      expect(stream.changes().map((c) => [c.op, c.version, c.task?.done])).toEqual([
        ["create", 1, false],
        ["update", 2, true],
      ]);
      expect(stream.events.filter((e) => e.event === "change").map((e) => e.id)).toEqual(["1", "2"]);
      controller.abort();
      await until(() => stream.ended, "the stream to end");
    });

    test("a stream whose credential stops holding (signed out, key revoked) ends at its next heartbeat", async () => {
      let signedIn = true;
      const tasksFor: TasksFor = async () => {
        if (!signedIn) throw new TaskError("unauthorized", "Sign in.");
        return a.forUser(env.userId);
      };
      const res = await taskEvents(tasksFor, new Request("http://x/api/tasks/events"), { heartbeatMs: 50 });
      const stream = sseReader(res);
      await until(() => stream.events.some((e) => e.event === "ready"), "ready");
      await new Promise((r) => setTimeout(r, 120));
      expect(stream.ended).toBe(false);
      signedIn = false;
      await until(() => stream.ended, "the stream to end");
    });
  });
}

describe("the cache lab shows every instance's events of the user watching it (Redis)", () => {
  let env: TestEnv;
  let a: TaskStore;
  let b: TaskStore;
  let spy: Redis;
  const relayed: string[] = [];
  beforeAll(async () => {
    env = await createTestEnv(BACKENDS.find((x) => x.cacheDriver === "redis")!);
    a = await env.openStore({ live: createRedisBus({ prefix: env.prefix, url: TEST_REDIS_URL, publishTimeoutMs: 1_000 }) });
    b = await env.openStore({ live: createRedisBus({ prefix: env.prefix, url: TEST_REDIS_URL, publishTimeoutMs: 1_000 }) });
    await Promise.all([a.labRelay!.start(), b.labRelay!.start()]);
    // Everything published on any user's lab channel of this env, to see what is (not) sent.
    spy = new Redis(TEST_REDIS_URL);
    spy.on("pmessage", (_pattern, channel) => void relayed.push(channel));
    await spy.psubscribe(`${env.prefix}:*:lab`);
  });
  afterAll(async () => {
    spy.disconnect();
    await env.cleanup();
  });

  test("reads and writes served by another instance appear in the watcher's feed, marked with that instance; nobody watching, nothing is sent", async () => {
    const watcher = env.userId;
    const bystander = await env.createUser("unwatched");
    // Nobody watches the bystander's lab: their events stay where they happen.
    const theirs = await b.forUser(bystander).create({ title: "unwatched" });
    await b.forUser(bystander).get(theirs.id);

    await a.labRelay!.watch(watcher);
    await until(() => b.labRelay!["watched"].has(watcher), "the watch announced to the other instance");
    const task = await b.forUser(watcher).create({ title: "seen from afar" });
    await b.forUser(watcher).get(task.id);
    const remote = () => a.events.forUser(watcher).recent().filter((e) => e.instance === b.labRelay!.instance);
    await until(() => remote().length >= 2, "the other instance's events in the watcher's feed");
    expect(remote().map((e) => [e.kind, e.taskId]).reverse()).toEqual([
      ["write-through", task.id],
      ["hit", task.id],
    ]);
    expect(a.events.forUser(watcher).counts.hit).toBeGreaterThanOrEqual(1);
    // The watcher's own events are not sent back to it, and the bystander's were never sent at all.
    expect(a.events.forUser(watcher).recent().filter((e) => e.instance === a.labRelay!.instance)).toEqual([]);
    expect(relayed.filter((c) => c.includes(bystander))).toEqual([]);
    expect(a.events.forUser(bystander).recent()).toEqual([]);
  });
});

describe("live updates where there is no bus (Upstash) and on refusals", () => {
  let env: TestEnv;
  let store: TaskStore;
  beforeAll(async () => {
    env = await createTestEnv(BACKENDS.find((b) => b.cacheDriver === "upstash")!);
    store = await env.openStore();
  });
  afterAll(async () => {
    await env.cleanup();
  });

  test("the event stream is a 409 naming the polling alternative, and anonymous callers get a 401 first", async () => {
    const res = await taskEvents(async () => store.forUser(env.userId), new Request("http://x/api/tasks/events"));
    expect(res.status).toBe(409);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain("If-None-Match");
    const anonymous = await taskEvents(async () => {
      throw new TaskError("unauthorized", "Sign in.");
    }, new Request("http://x/api/tasks/events"));
    expect(anonymous.status).toBe(401);
  });

  test("polling: a list answers with an ETag, the same one back is a bodiless 304, and any change a reader would see makes it 200 again", async () => {
    const tasks = store.forUser(env.userId);
    const t = await tasks.create({ title: "polled" });
    const tasksFor: TasksFor = async () => tasks;
    const get = (etag?: string) => listTasks(tasksFor, new Request("http://x/api/tasks?limit=10", { headers: etag ? { "if-none-match": etag } : {} }));
    const first = await get();
    expect(first.status).toBe(200);
    const etag = first.headers.get("etag")!;
    expect(etag).toMatch(/^"l[A-Za-z0-9_-]{22}"$/);
    const same = await get(etag);
    expect(same.status).toBe(304);
    expect(await same.text()).toBe("");
    expect(same.headers.get("etag")).toBe(etag);
    await tasks.update({ id: t.id, patch: { title: "polled, renamed" } });
    const changed = await get(etag);
    expect(changed.status).toBe(200);
    expect(changed.headers.get("etag")).not.toBe(etag);
    // A change to the counts alone (a task beyond this page) changes it too.
    const again = changed.headers.get("etag")!;
    await store.forUser(env.userId).create({ title: "another" });
    expect((await get(again)).status).toBe(200);
  });
});

describe("live updates on a Redis Cluster (SPUBLISH/SSUBSCRIBE)", () => {
  const clusterTest = testWhere(redisServerAvailable());
  let cluster: PrivateCluster | undefined;
  const buses: LiveBus[] = [];
  beforeAll(async () => {
    if (redisServerAvailable()) cluster = await startRedisCluster();
  }, 60_000);
  afterAll(async () => {
    await Promise.allSettled(buses.map((b) => b.close()));
    await cluster?.stop();
  });

  clusterTest("each user's messages reach that user's subscribers on another instance, whichever master owns their slot", async () => {
    const nodes = cluster!.seeds.split(",").map((s) => ({ host: s.split(":")[0]!, port: Number(s.split(":")[1]) }));
    const prefix = `wtt_live_${Date.now()}`;
    const publisher = createRedisBus({ prefix, clusterNodes: nodes, publishTimeoutMs: 2_000 });
    const subscriber = createRedisBus({ prefix, clusterNodes: nodes, publishTimeoutMs: 2_000 });
    buses.push(publisher, subscriber);
    expect(subscriber.kind).toBe("redis-cluster");
    // Enough users to land on every master.
    const users = Array.from({ length: 12 }, (_, i) => `clusteruser${i}`);
    const got = new Map(users.map((u) => [u, collector()]));
    const ends = await Promise.all(users.map((u) => subscriber.subscribe(u, got.get(u)!.listener)));
    for (const [i, u] of users.entries()) await publisher.publish(u, [{ op: "delete", id: i + 1, version: 7 }]);
    await until(() => users.every((u) => got.get(u)!.changes.length === 1), "every user's message", 5_000);
    for (const [i, u] of users.entries()) expect(got.get(u)!.changes).toEqual([{ op: "delete", id: i + 1, version: 7 }]);
    for (const end of ends) end();
  }, 30_000);
});
