import { expect, test } from "vitest";
import { loopStalledMs } from "@/lib/loopStall";

// Real timers: the measure is of this process's own event loop.

function busy(ms: number) {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // The loop can run nothing else meanwhile, like a long synchronous render.
  }
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 30));

test("a stretch of synchronous work counts as stalled time, at once and after the ticker has caught up", async () => {
  loopStalledMs();
  await tick();
  const before = loopStalledMs();
  busy(200);
  // Read at once, before the ticker has run: the overdue tick counts as far as it is overdue.
  const during = loopStalledMs();
  expect(during - before).toBeGreaterThanOrEqual(150);
  await tick();
  const after = loopStalledMs();
  expect(after - before).toBeGreaterThanOrEqual(150);
  // Monotonic: the overdue part became the ticker's lateness, nothing counted twice or lost.
  expect(after).toBeGreaterThanOrEqual(during);
});
