import { gzipSync } from "node:zlib";
import { expect, test } from "./fixtures";

// The task page's first-load JavaScript: every script file the HTML of a signed-in `/` names (but
// the noModule polyfills, which only browsers without ES modules fetch), gzipped as a server would
// send it. Sizes are fixed by the build, unlike timings, so they are held to a budget here; `npm run
// bench` reports the same figure. Of the ~160 KiB, React DOM and the Next.js router are ~120 KiB;
// the app's own code is ~15 KiB and react-query ~6 KiB.
const BUDGET_KIB = 170;

test("The task page's first-load JavaScript stays within its budget, gzipped, and carries no zod", async ({ page }) => {
  const res = await page.request.get("/");
  expect(res.status()).toBe(200);
  const html = await res.text();
  const scripts = [...html.matchAll(/<script([^>]*)\ssrc="([^"]+)"([^>]*)>/g)].filter((m) => !/nomodule/i.test(`${m[1]}${m[3]}`)).map((m) => m[2]!);
  expect(scripts.length, "script files named by the page").toBeGreaterThan(3);
  let gzipped = 0;
  const zod: string[] = [];
  for (const src of new Set(scripts)) {
    const file = await page.request.get(src);
    expect(file.status(), src).toBe(200);
    const body = await file.body();
    gzipped += gzipSync(body).length;
    // The page validates with lib/tasks/rules.ts; a value imported from lib/tasks/schema.ts would bring zod (~30 KiB gzip) back.
    if (/\bZodError\b|_zod\b/.test(body.toString("utf8"))) zod.push(src);
  }
  expect(zod, "script files with zod in them").toEqual([]);
  expect(Math.round(gzipped / 1024), `first-load JavaScript of / (KiB, gzip; budget ${BUDGET_KIB})`).toBeLessThanOrEqual(BUDGET_KIB);
});
