import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ACTION_CACHE_CONTROL, actionCacheControl, actionResponsesWithoutNoStore, isServerActionRequest } from "@/lib/http/actionResponses";

const NEXT_ACTION_CACHE_CONTROL = "no-cache, no-store, max-age=0, must-revalidate";
const NEXT_PAGE_CACHE_CONTROL = "private, no-cache, no-store, max-age=0, must-revalidate";

describe("server actions' answers without no-store", () => {
  test("actionCacheControl() drops no-store and keeps every cache from reusing the answer", () => {
    expect(actionCacheControl(NEXT_ACTION_CACHE_CONTROL)).toBe(ACTION_CACHE_CONTROL);
    expect(actionCacheControl("no-store")).toBe(ACTION_CACHE_CONTROL);
    expect(ACTION_CACHE_CONTROL).toBe("private, no-cache, max-age=0, must-revalidate");
    // Anything else is left as it is.
    expect(actionCacheControl("public, max-age=60")).toBe("public, max-age=60");
    expect(actionCacheControl("x-no-store-ish")).toBe("x-no-store-ish");
    expect(actionCacheControl(60)).toBe(60);
  });

  test("isServerActionRequest() is a POST naming an action", () => {
    expect(isServerActionRequest({ method: "POST", headers: { "next-action": "40abc" } })).toBe(true);
    expect(isServerActionRequest({ method: "POST", headers: {} })).toBe(false);
    expect(isServerActionRequest({ method: "GET", headers: { "next-action": "40abc" } })).toBe(false);
  });

  describe("on a server", () => {
    let server: Server;
    let base: string;
    beforeAll(async () => {
      // Answers as Next.js does: no-store on every action and every page.
      server = createServer((req, res) => {
        res.setHeader("Cache-Control", req.headers["next-action"] ? NEXT_ACTION_CACHE_CONTROL : NEXT_PAGE_CACHE_CONTROL);
        res.end("ok");
      });
      actionResponsesWithoutNoStore(server);
      actionResponsesWithoutNoStore(server); // a second install changes nothing
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

    test("a server action's answer goes without no-store", async () => {
      const res = await fetch(`${base}/`, { method: "POST", headers: { "Next-Action": "40abc" }, body: "[]" });
      expect(res.headers.get("cache-control")).toBe(ACTION_CACHE_CONTROL);
    });

    test("pages and other requests keep theirs", async () => {
      expect((await fetch(`${base}/`)).headers.get("cache-control")).toBe(NEXT_PAGE_CACHE_CONTROL);
      expect((await fetch(`${base}/`, { method: "POST", body: "title=x" })).headers.get("cache-control")).toBe(NEXT_PAGE_CACHE_CONTROL);
    });
  });
});
