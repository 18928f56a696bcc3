import { defaultKeyHasher } from "@better-auth/api-key";
import { expect, test } from "vitest";
import { keyHash } from "@/lib/auth/apiKeys";

test("a key's hash is the one the api-key plugin stores, byte for byte", async () => {
  for (const key of ["wtk_abc", `wtk_${"x".repeat(64)}`, "wtk_ünïcode ✓", ""]) expect(keyHash(key)).toBe(await defaultKeyHasher(key));
});
