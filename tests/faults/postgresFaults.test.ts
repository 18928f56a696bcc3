import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { UserTaskStore } from "@/lib/taskStore";
import { BACKENDS, createTestEnv, type TestEnv } from "../support/backends";
import { startTcpProxy, type TcpProxy } from "../support/tcpProxy";

const backend = BACKENDS.find((b) => b.cacheDriver === "redis");
if (!backend) throw new Error("no postgres + redis backend");

describe("Postgres unreachable (through a proxy the test takes down)", () => {
  let env: TestEnv;
  let proxy: TcpProxy;
  let store: UserTaskStore;

  beforeAll(async () => {
    env = await createTestEnv(backend);
    const url = new URL(env.databaseUrl as string);
    proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port || 5432) });
    url.host = `127.0.0.1:${proxy.port}`;
    store = (await env.openStore({ databaseUrl: url.toString() })).forUser(env.userId);
  });
  afterAll(async () => {
    await proxy.close();
    await env.cleanup();
  });

  test("writes answer 503 and change no cache entry; cached reads still answer; all recovers when it returns", async () => {
    const kept = await store.create({ title: "kept" });
    const doomed = await store.create({ title: "not deleted while Postgres is down" });
    await store.list({ limit: 50 });
    const driver = store.store.cache!.driver.forUser(env.userId);
    const before = { entries: await driver.getTasks([kept.id, doomed.id]), index: await driver.readWholeIndex() };

    await proxy.setDown(true);
    for (const attempt of [
      () => store.create({ title: "never written" }),
      () => store.update({ id: kept.id, patch: { title: "never written" } }),
      () => store.remove({ id: doomed.id }),
    ]) {
      await expect(attempt()).rejects.toMatchObject({ code: "service_unavailable", status: 503 });
    }
    expect({ entries: await driver.getTasks([kept.id, doomed.id]), index: await driver.readWholeIndex() }).toEqual(before);
    // What the cache already holds is still served.
    expect(await store.get(kept.id)).toEqual({ task: kept, cache: "HIT" });
    expect((await store.list({ limit: 50 })).cache).toBe("HIT");
    expect(store.store.pendingRepairCount).toBe(0);

    await proxy.setDown(false);
    const updated = await store.update({ id: kept.id, patch: { title: "written once it was back" } });
    expect(updated.version).toBe(2);
    expect(await store.get(kept.id)).toEqual({ task: updated, cache: "HIT" });
    expect((await store.store.audit(env.userId)).ok).toBe(true);
  });
});
