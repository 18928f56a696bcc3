import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { Redis } from "ioredis";
import { authenticate, rateLimiterFor, type Auth } from "@/lib/auth";
import { verifyApiKey } from "@/lib/auth/apiKeys";
import { createKey, deleteKey, type KeyContext } from "@/lib/http/keyHandlers";
import { authKey } from "@/lib/cache/keys";
import { REVOKED_VALUE } from "@/lib/cache/scripts";
import * as queries from "@/lib/tasks/queries";
import type { TaskStore } from "@/lib/taskStore";
import { BACKENDS, createTestEnv, type TestEnv } from "../support/backends";
import { freePort, startPrivateRedis, type PrivateRedis } from "../support/redisServer";
import { startTcpProxy, type TcpProxy } from "../support/tcpProxy";
import { gate } from "../support/gate";
import { apiRequest, signIn, signOut, signUp, testAuth } from "../support/auth";

/**
 * Sessions when the cache fails: accounts keep working from Postgres, and a sign-out that the
 * cache could not take is never undone by the cache coming back, on any instance.
 */
const backend = BACKENDS.find((b) => b.cacheDriver === "redis");
if (!backend) throw new Error("no postgres + redis backend");

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("sessions through cache faults (postgres + private redis)", () => {
  let env: TestEnv;
  let redis: PrivateRedis;
  let proxy: TcpProxy;
  let admin: Redis;

  beforeAll(async () => {
    env = await createTestEnv(backend);
    redis = await startPrivateRedis();
    proxy = await startTcpProxy({ host: "127.0.0.1", port: redis.port });
    admin = new Redis(redis.url);
  });
  afterAll(async () => {
    admin.disconnect();
    await proxy.close();
    await redis.stop();
    await env.cleanup();
  });

  const who = (store: TaskStore, auth: Auth, cookie: string) => authenticate(apiRequest("GET", "/api/tasks", { cookie }), { store, auth: async () => auth });
  const keysOn = (store: TaskStore, auth: Auth): KeyContext => ({ store: async () => store, auth: async () => auth, limiter: async () => rateLimiterFor(store, true) });
  /** Each test's stores are closed at its end, so no repair timer of one test helps the next. */
  let opened: TaskStore[] = [];
  const open = async (options: Parameters<TestEnv["openStore"]>[0]): Promise<TaskStore> => {
    const store = await env.openStore(options);
    opened.push(store);
    return store;
  };
  afterEach(async () => {
    await Promise.allSettled(opened.map((s) => s.close()));
    opened = [];
  });
  /** Holds the first fill the store's driver writes until the test opens the gate. */
  const holdFirstFill = (store: TaskStore) => {
    const held = gate();
    const driver = store.cache!.driver;
    const fill = driver.fillValue.bind(driver);
    driver.fillValue = async (...args) => {
      await held.wait();
      return fill(...args);
    };
    return held;
  };
  const tokenOf = (cookie: string) => decodeURIComponent(cookie.split("=")[1] ?? "").split(".")[0] ?? "";

  test("with Redis unreachable, sign-up, sign-in, authenticated requests and sign-out all work from Postgres", async () => {
    const store = await open({ cache: { redisUrl: `redis://127.0.0.1:${await freePort()}`, timeoutMs: 100, breakerFailures: 2 } });
    const auth = testAuth(store);
    const { res, cookie, who: person } = await signUp(auth);
    expect(res.status).toBe(200);
    expect(await who(store, auth, cookie)).toMatchObject({ email: person.email });
    const again = await signIn(auth, person);
    expect(again.res.status).toBe(200);
    expect(await who(store, auth, again.cookie)).not.toBeNull();
    expect((await signOut(auth, cookie)).status).toBe(200);
    expect(await who(store, auth, cookie)).toBeNull();
    expect(await who(store, auth, again.cookie)).not.toBeNull();
  });

  test("a sign-out while one instance can't reach Redis: refused there at once, and on the other instance within its repair period", async () => {
    // A reaches Redis through the proxy the test takes down; B reaches it directly.
    const a = await open({ cache: { redisUrl: proxy.url("redis"), timeoutMs: 150, breakerFailures: 1, breakerCooldownMs: 60_000 } });
    const b = await open({ cache: { redisUrl: redis.url }, repairIntervalMs: 100 });
    const [authA, authB] = [testAuth(a), testAuth(b)];
    const { cookie } = await signUp(authA);
    expect(await who(a, authA, cookie)).not.toBeNull();
    expect(await who(b, authB, cookie)).not.toBeNull(); // cached in Redis
    await proxy.setDown(true);
    expect((await signOut(authA, cookie)).status).toBe(200);
    // The delete did not reach Redis: the revocation is owed, in A and in the table.
    expect(a.ledger.owesAuth()).toBe(true);
    expect(await queries.listCacheRepairs(a.database.db, { limit: 10 })).toEqual([expect.objectContaining({ kind: "auth", key: tokenOf(cookie) })]);
    // A trusts no cached session while it owes a revocation.
    expect(await who(a, authA, cookie)).toBeNull();
    // B's repair timer writes the revocation marker from the table.
    let refusedAfter = -1;
    for (let waited = 0; waited <= 2_000; waited += 50) {
      if ((await who(b, authB, cookie)) === null) {
        refusedAfter = waited;
        break;
      }
      await sleep(50);
    }
    console.log(`sign-out during a partition: refused by the other instance after ${refusedAfter} ms`);
    expect(refusedAfter).toBeGreaterThanOrEqual(0);
    expect(await admin.get(authKey(env.prefix, tokenOf(cookie)))).toBe(REVOKED_VALUE);
    await proxy.setDown(false);
    expect(await who(a, authA, cookie)).toBeNull();
  });

  test("a sign-out during a Redis pause is never undone when Redis comes back with the session still in it", async () => {
    const opts = { cache: { redisUrl: redis.url, timeoutMs: 150, breakerFailures: 1, breakerCooldownMs: 200 } };
    const a = await open(opts);
    const b = await open(opts); // no repair timer (and none left from earlier tests): only the after-outage pass can save it
    const [authA, authB] = [testAuth(a), testAuth(b)];
    const { cookie } = await signUp(authA);
    expect(await who(b, authB, cookie)).not.toBeNull();
    const key = authKey(env.prefix, tokenOf(cookie));
    expect(await admin.get(key)).toMatch(/^\{/);

    await admin.client("PAUSE", 1200, "ALL");
    expect((await signOut(authA, cookie)).status).toBe(200);
    expect(await who(b, authB, cookie)).toBeNull(); // B's cache read times out: Postgres says no
    await sleep(1300); // the pause ends; the session's copy is still in Redis
    // Both instances saw the cache fail, so each runs a full repair pass before trusting it again.
    for (let i = 0; i < 10; i++) {
      expect(await who(b, authB, cookie)).toBeNull();
      expect(await who(a, authA, cookie)).toBeNull();
      await sleep(50);
    }
    expect(await admin.get(key)).toBe(REVOKED_VALUE);
  });

  test("a Redis restarted empty after a sign-out can't bring the session back", async () => {
    const store = await open({ cache: { redisUrl: redis.url, timeoutMs: 150, breakerFailures: 1, breakerCooldownMs: 200 } });
    const auth = testAuth(store);
    const { cookie } = await signUp(auth);
    expect(await who(store, auth, cookie)).not.toBeNull();
    await redis.stop("SIGKILL");
    expect((await signOut(auth, cookie)).status).toBe(200);
    await redis.start();
    for (let i = 0; i < 10; i++) {
      expect(await who(store, auth, cookie)).toBeNull();
      await sleep(100);
    }
  });
  test("a session fill that read Postgres before a sign-out and a flush refuses itself: the session stays signed out", async () => {
    const a = await open({ cache: { redisUrl: redis.url } });
    const b = await open({ cache: { redisUrl: redis.url } });
    const [authA, authB] = [testAuth(a), testAuth(b)];
    const { cookie } = await signUp(authB);
    await admin.del(authKey(env.prefix, tokenOf(cookie))); // A's next request misses and fills
    const held = holdFirstFill(a);
    const slowRead = who(a, authA, cookie); // reads the session row, then waits to fill it
    await held.reached();
    expect((await signOut(authB, cookie)).status).toBe(200);
    await admin.flushall(); // the revocation marker is gone with everything else
    held.open();
    expect(await slowRead).not.toBeNull(); // it read Postgres before the sign-out: that one request was in time
    expect(await admin.get(authKey(env.prefix, tokenOf(cookie)))).toBeNull();
    expect(await who(a, authA, cookie)).toBeNull();
    expect(await who(b, authB, cookie)).toBeNull();
  });

  test("an API-key fill that read Postgres before the key was revoked and the cache flushed refuses itself", async () => {
    const a = await open({ cache: { redisUrl: redis.url } });
    const b = await open({ cache: { redisUrl: redis.url } });
    const authB = testAuth(b);
    const { cookie } = await signUp(authB);
    const { id, key } = (await (await createKey(apiRequest("POST", "/api/keys", { cookie }, { name: "doomed" }), keysOn(b, authB))).json()) as { id: string; key: string };
    const held = holdFirstFill(a);
    const slowCheck = verifyApiKey(a, key);
    await held.reached();
    expect((await deleteKey(apiRequest("DELETE", `/api/keys/${id}`, { cookie }), id, keysOn(b, authB))).status).toBe(204);
    await admin.flushall();
    held.open();
    expect(await slowCheck).not.toBeNull();
    expect(await verifyApiKey(a, key)).toBeNull();
    expect(await verifyApiKey(b, key)).toBeNull();
  });

  test("an API key revoked while one instance can't reach Redis stops working on every instance, and stays revoked when Redis is back", async () => {
    const a = await open({ cache: { redisUrl: proxy.url("redis"), timeoutMs: 150, breakerFailures: 1, breakerCooldownMs: 60_000 } });
    const b = await open({ cache: { redisUrl: redis.url }, repairIntervalMs: 100 });
    const authA = testAuth(a);
    const { cookie } = await signUp(authA);
    const { id, key } = (await (await createKey(apiRequest("POST", "/api/keys", { cookie }, { name: "revoked in a partition" }), keysOn(a, authA))).json()) as { id: string; key: string };
    expect(await verifyApiKey(a, key)).not.toBeNull();
    expect(await verifyApiKey(b, key)).not.toBeNull(); // cached in Redis
    await proxy.setDown(true);
    expect((await deleteKey(apiRequest("DELETE", `/api/keys/${id}`, { cookie }), id, keysOn(a, authA))).status).toBe(204);
    expect(a.ledger.owesAuth()).toBe(true);
    expect(await verifyApiKey(a, key)).toBeNull();
    let refused = false;
    for (let waited = 0; waited <= 2_000 && !refused; waited += 50) {
      refused = (await verifyApiKey(b, key)) === null;
      if (!refused) await sleep(50);
    }
    expect(refused).toBe(true);
    await proxy.setDown(false);
    for (let i = 0; i < 5; i++) {
      expect(await verifyApiKey(a, key)).toBeNull();
      expect(await verifyApiKey(b, key)).toBeNull();
      await sleep(50);
    }
  });

  test("signing out everywhere while the cache is down revokes every session, and none comes back with the cache", async () => {
    const store = await open({ cache: { redisUrl: proxy.url("redis"), timeoutMs: 150, breakerFailures: 1, breakerCooldownMs: 200 } });
    const other = await open({ cache: { redisUrl: redis.url } });
    const [auth, otherAuth] = [testAuth(store), testAuth(other)];
    const person = await signUp(auth);
    const laptop = await signIn(otherAuth, person.who);
    for (const cookie of [person.cookie, laptop.cookie]) expect(await who(other, otherAuth, cookie)).not.toBeNull(); // both cached
    await proxy.setDown(true);
    expect(await auth.api.revokeSessions({ headers: new Headers({ cookie: person.cookie }) })).toMatchObject({ status: true });
    await proxy.setDown(false);
    await sleep(300); // the breaker's cool-down: the store tries the cache again
    for (let i = 0; i < 5; i++) {
      for (const cookie of [person.cookie, laptop.cookie]) {
        expect(await who(store, auth, cookie)).toBeNull();
      }
      await sleep(50);
    }
    // The revocations reached Redis from the ledger: the other instance, which never saw a fault, refuses them too.
    for (const cookie of [person.cookie, laptop.cookie]) expect(await admin.get(authKey(env.prefix, tokenOf(cookie)))).toBe(REVOKED_VALUE);
    for (const cookie of [person.cookie, laptop.cookie]) expect(await who(other, otherAuth, cookie)).toBeNull();
  });
});
