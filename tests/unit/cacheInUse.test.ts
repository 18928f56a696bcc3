import { describe, expect, test } from "vitest";
import { cacheSentence } from "@/app/_components/cacheInUse";
import { CACHE_DRIVER_CHOICES } from "@/lib/names";

const text = (s: ReturnType<typeof cacheSentence>) => `${s.before}${s.link}${s.after}`;

describe("the task page's footer names the cache in use", () => {
  test("each driver by its own name", () => {
    expect(text(cacheSentence("redis"))).toBe("Postgres is the source of truth; every write goes through the Redis cache.");
    expect(text(cacheSentence("upstash"))).toBe("Postgres is the source of truth; every write goes through the Upstash Redis cache.");
    expect(text(cacheSentence("memory"))).toBe("Postgres is the source of truth; every write goes through the in-process memory cache.");
    expect(text(cacheSentence("none"))).toBe("Postgres is the source of truth; no cache is in use, so every read goes to Postgres (cache lab).");
  });

  test("only a Redis driver is called Redis", () => {
    for (const driver of CACHE_DRIVER_CHOICES) {
      expect(text(cacheSentence(driver)).includes("Redis"), driver).toBe(driver === "redis" || driver === "upstash");
    }
    expect(text(cacheSentence(null))).toBe("Postgres is the source of truth; every write goes through the cache.");
  });

  test("the link's name contains its text and says where it goes", () => {
    for (const driver of [...CACHE_DRIVER_CHOICES, null]) {
      const sentence = cacheSentence(driver);
      expect(sentence.linkName).toContain(sentence.link);
      expect(sentence.linkName).toMatch(/cache lab/);
    }
  });
});
