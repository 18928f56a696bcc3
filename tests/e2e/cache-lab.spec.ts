import AxeBuilder from "@axe-core/playwright";
import type { Locator, Page } from "@playwright/test";
import { mkdirSync } from "node:fs";
import {
  apiCreate,
  DESKTOP,
  expect,
  listAllTasks,
  PHONE,
  test,
} from "./fixtures";

// The cache lab (issue 10, item 6: "a cache lab that teaches"): reads in the event feed beside
// writes, Evict and "Flush my cache", the race demo, a phone layout of one card per task, and an
// accessibility scan, at desktop and phone sizes.

const SIZES = [
  ["desktop (1280 × 800)", DESKTOP, "desktop"],
  ["phone (390 × 844)", PHONE, "phone"],
] as const;

/** Where the stories leave their screenshots (looked at by people, not compared by the tests). */
const SHOTS = process.env.LAB_SHOTS_DIR;
async function shot(page: Page, name: string): Promise<void> {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: `${SHOTS}/lab-${name}.png`, fullPage: true });
}

/** The cache lab's table of tasks. */
function tasksTable(page: Page): Locator {
  return page.getByRole("table", { name: /first page of tasks/i });
}

/** One cell of the task's row, found by the column's header text (so column order may change). */
async function cellOf(page: Page, id: number, column: string): Promise<Locator> {
  const table = tasksTable(page);
  const headers = (await table.getByRole("columnheader").allTextContents()).map((h) => h.trim());
  const index = headers.indexOf(column);
  expect(index, `column ${JSON.stringify(column)} in ${JSON.stringify(headers)}`).toBeGreaterThanOrEqual(0);
  const row = table.getByRole("row").filter({ has: page.getByRole("rowheader", { name: String(id), exact: true }) });
  return row.locator(":scope > th, :scope > td").nth(index);
}

/** Events in the live list of one kind (its badge) for one task. */
function eventsFor(page: Page, kind: string, id: number): Locator {
  return page
    .getByRole("list", { name: "Cache events" })
    .getByRole("listitem")
    .filter({ has: page.getByText(kind, { exact: true }) })
    .filter({ hasText: new RegExp(`\\btask ${id}\\b`) });
}

test("A person watches a write go through the cache on the cache lab page", async ({ page, unique }) => {
  const title = unique.title("Water the plants");
  const task = await apiCreate(page.request, title);
  expect(task.version).toBe(1);

  // The lab is one click away from the task list's footer.
  await page.goto("/");
  await page.getByRole("contentinfo").getByRole("link", { name: /open the cache lab/ }).click();
  await expect(page).toHaveURL(/\/cache$/);
  await expect(page).toHaveTitle("Cache lab · writethrough-tasks");
  await expect(page.getByRole("heading", { level: 1, name: "Cache lab" })).toBeVisible();

  // The header says which cache is in use and that its breaker lets requests through.
  const stats = page.getByRole("group", { name: "Cache status" }).getByRole("definition");
  await expect(stats.filter({ hasText: /^(memory|redis)$/ })).toHaveCount(1);
  await expect(stats.filter({ hasText: "closed: cache in use" })).toHaveCount(1);

  // The new task is on screen: written through on create, so Postgres and the cache agree at v1.
  await expect(await cellOf(page, task.id, "Title")).toHaveText(title);
  await expect(await cellOf(page, task.id, "Postgres version")).toHaveText("v1");
  await expect(await cellOf(page, task.id, "Cached version")).toHaveText("v1");
  await expect(await cellOf(page, task.id, "Status")).toHaveText("fresh");
  await expect(await cellOf(page, task.id, "TTL left")).toHaveText(/^(\d+ min|1 h( \d+ min)?)$/);

  // Rename it: Postgres moves to v2 and the cache follows in the same request.
  await page.getByRole("button", { name: `Rename task ${task.id}`, exact: true }).click();
  await expect(page.getByRole("status", { name: "Last action" })).toContainText(
    `Renamed task ${task.id}: Postgres is now at version 2.`,
  );
  await expect(await cellOf(page, task.id, "Postgres version")).toHaveText("v2");
  await expect(await cellOf(page, task.id, "Cached version")).toHaveText("v2");
  await expect(await cellOf(page, task.id, "Status")).toHaveText("fresh");
  await expect(await cellOf(page, task.id, "Title")).toHaveText(/^Water the plants · .+ \(renamed at \d\d:\d\d:\d\d\)$/);

  // The live events list shows the write-through of that update (the create's came before it).
  await expect(eventsFor(page, "write-through", task.id).filter({ hasText: "update" })).toHaveCount(1);
  await expect(eventsFor(page, "write-through", task.id).filter({ hasText: "create" })).toHaveCount(1);

  // The audit compares the whole cache with Postgres and finds no drift.
  await page.getByRole("button", { name: "Run audit", exact: true }).click();
  const report = page.getByRole("status", { name: "Audit report" });
  await expect(report).toContainText("OK: no drift. The cache agrees with Postgres.");
  for (const figure of ["Stale", "Ghosts", "Missing from list"]) {
    await expect(report.getByRole("term").filter({ hasText: new RegExp(`^${figure}$`) }).locator("+ dd")).toHaveText("0");
  }
  await expect(report.getByRole("table")).toHaveCount(0);

  // Delete it from the page: Postgres has no row, the cache keeps a tombstone above the last version.
  await page.getByRole("button", { name: `Delete task ${task.id}`, exact: true }).click();
  await expect(await cellOf(page, task.id, "Status")).toHaveText("tombstone");
  await expect(await cellOf(page, task.id, "Postgres version")).toHaveText(/no row/);
  await expect(await cellOf(page, task.id, "Cached version")).toHaveText(/^v3\b.*tombstone/);
  await expect(page.getByRole("button", { name: `Delete task ${task.id}`, exact: true })).toHaveCount(0);
  await expect(eventsFor(page, "tombstone", task.id)).toHaveCount(1);

  // And Postgres (through the REST API) agrees that it is gone.
  expect((await page.request.get(`/api/tasks/${task.id}`)).status()).toBe(404);
});

/* ---------- reads, evictions, flushes, the race demo: at both sizes ---------- */

/** The visible row (desktop) or card (phone) of a task: the same element, laid out by lab.css. */
function taskRow(page: Page, id: number): Locator {
  return tasksTable(page).locator(`tr[data-task-id="${id}"]`);
}

/** A labelled value of a task's row: its cell in the table's column (the phone card shows the same cells). */
async function valueOf(page: Page, id: number, column: "Postgres version" | "Cached version" | "Status" | "TTL left"): Promise<Locator> {
  return cellOf(page, id, column);
}

/** The kinds of the events listed for a task, newest first. */
async function kindsFor(page: Page, id: number): Promise<string[]> {
  const items = page.getByRole("list", { name: "Cache events" }).getByRole("listitem").filter({ hasText: new RegExp(`\\btask ${id}\\b`) });
  return (await items.locator(".lab-kind").allTextContents()).map((k) => k.trim());
}

type Violation = Awaited<ReturnType<AxeBuilder["analyze"]>>["violations"][number];

async function expectNoSeriousViolations(page: Page, where: string): Promise<void> {
  const results = await new AxeBuilder({ page }).analyze();
  const serious = results.violations.filter((v: Violation) => v.impact === "serious" || v.impact === "critical");
  const text = serious.flatMap((v) => [`${v.id} (${v.impact}): ${v.help}`, ...v.nodes.map((n) => `    ${JSON.stringify(n.target)}: ${n.failureSummary ?? ""}`)]);
  expect(
    serious.map((v) => v.id),
    `${where}:\n${text.join("\n")}`,
  ).toEqual([]);
}

/** Opens every closed <details> on the page (legends, counters, the race's rounds). */
async function openEveryPanel(page: Page): Promise<void> {
  const closed = page.locator("details:not([open]) > summary");
  for (let n = await closed.count(); n > 0; n--) await closed.first().click();
  await expect(closed).toHaveCount(0);
}

async function openLab(page: Page): Promise<void> {
  await page.goto("/cache");
  await expect(page.getByRole("heading", { level: 1, name: "Cache lab" })).toBeVisible();
}

for (const [size, viewport, tag] of SIZES) {
  test.describe(`on a ${size}`, () => {
    test.use({ viewport });

    test(`A person evicts a task and its next reads show miss, then fill, then hit in the events, on a ${size}`, async ({ page, unique }) => {
      const task = await apiCreate(page.request, unique.title("Evict the cat food"));
      await openLab(page);
      await expect(await valueOf(page, task.id, "Status")).toHaveText("fresh");
      await expect(await valueOf(page, task.id, "Cached version")).toHaveText("v1");

      await page.getByRole("button", { name: `Evict task ${task.id}`, exact: true }).click();
      const notice = page.getByRole("status", { name: "Last action" });
      await expect(notice).toContainText(`Evicted task ${task.id}`);
      // Not cached any more, while Postgres still has it at v1.
      await expect(await valueOf(page, task.id, "Status")).toHaveText("absent");
      await expect(await valueOf(page, task.id, "Cached version")).toHaveText(/not cached/);
      await expect(await valueOf(page, task.id, "Postgres version")).toHaveText("v1");
      expect(await kindsFor(page, task.id), "no read of the task since the eviction").not.toContain("miss");

      // The first read misses and fills the cache from Postgres...
      await page.getByRole("button", { name: `Read task ${task.id}`, exact: true }).click();
      await expect(notice).toContainText(`Read task ${task.id}: a miss`);
      await expect(await valueOf(page, task.id, "Status")).toHaveText("fresh");
      await expect(await valueOf(page, task.id, "Cached version")).toHaveText("v1");
      // ...and the next one is a hit. The feed lists them newest first: hit, fill, miss.
      await page.getByRole("button", { name: `Read task ${task.id}`, exact: true }).click();
      await expect(notice).toContainText(`Read task ${task.id}: a hit`);
      await expect.poll(async () => (await kindsFor(page, task.id)).slice(0, 3)).toEqual(["hit", "fill", "miss"]);
      const feed = page.getByRole("list", { name: "Cache events" });
      await expect(feed.getByRole("listitem").filter({ hasText: new RegExp(`\\btask ${task.id}\\b`) }).first()).toContainText("v1");

      // The legend says what each kind means, reads included, and the counters count them.
      const legend = page.locator("details.lab-legend").filter({ hasText: "What the events mean" });
      await legend.locator("summary").click();
      for (const kind of ["hit", "miss", "fill", "bypass"]) await expect(legend.getByRole("term").filter({ hasText: new RegExp(`^${kind}$`) })).toHaveCount(1);
      await expect(legend.getByRole("term").filter({ hasText: /^miss$/ }).locator("+ dd")).toContainText("so it read Postgres");
      await expect(legend.getByRole("term").filter({ hasText: /^fill$/ }).locator("+ dd")).toContainText("copied into the cache");
      const counters = page.locator("details.lab-counters");
      await counters.locator("summary").click();
      for (const kind of ["hit", "miss", "fill"]) {
        await expect(counters.getByRole("listitem").filter({ hasText: new RegExp(`^${kind}\\s+[1-9]\\d*$`) })).toHaveCount(1);
      }
      await shot(page, `evict-${tag}`);
    });

    test(`A person flushes their cache: every task reads as not cached until it is read again, on a ${size}`, async ({ page, unique }) => {
      const first = await apiCreate(page.request, unique.title("Flush the radiators"));
      const second = await apiCreate(page.request, unique.title("Flush the boiler"));
      await openLab(page);
      for (const task of [first, second]) await expect(await valueOf(page, task.id, "Status")).toHaveText("fresh");

      await page.getByRole("button", { name: "Flush my cache", exact: true }).click();
      await expect(page.getByRole("status", { name: "Last action" })).toContainText("Flushed your cache");
      for (const task of [first, second]) {
        await expect(await valueOf(page, task.id, "Status")).toHaveText("absent");
        await expect(await valueOf(page, task.id, "Postgres version")).toHaveText("v1");
      }

      // A read brings one back (miss, then fill); the other stays out until it is read.
      await page.getByRole("button", { name: `Read task ${first.id}`, exact: true }).click();
      await expect(page.getByRole("status", { name: "Last action" })).toContainText(`Read task ${first.id}: a miss`);
      await expect(await valueOf(page, first.id, "Status")).toHaveText("fresh");
      await expect(await valueOf(page, second.id, "Status")).toHaveText("absent");
      await expect.poll(async () => (await kindsFor(page, first.id)).slice(0, 2)).toEqual(["fill", "miss"]);

      // A write after the flush goes through as ever.
      await page.getByRole("button", { name: `Rename task ${second.id}`, exact: true }).click();
      await expect(page.getByRole("status", { name: "Last action" })).toContainText(`Renamed task ${second.id}: Postgres is now at version 2.`);
      await expect(await valueOf(page, second.id, "Cached version")).toHaveText("v2");
      await expect(await valueOf(page, second.id, "Status")).toHaveText("fresh");
      await shot(page, `flush-${tag}`);
    });

    test(`A person runs the race demo: the naive cache ends rounds behind Postgres, ours never does, on a ${size}`, async ({ page, unique }) => {
      const mine = await apiCreate(page.request, unique.title("Keep this one"));
      await openLab(page);
      const result = page.getByRole("status", { name: "Race demo result" });
      await expect(result).toContainText("Not run yet.");

      await page.getByRole("button", { name: "Run the race demo", exact: true }).click();
      const figure = (label: RegExp) => result.getByRole("term").filter({ hasText: label }).locator("+ dd");
      await expect(figure(/^Ours:/)).toHaveText("0 of 10 rounds ended with the cache ≠ Postgres", { timeout: 30_000 });
      await expect(figure(/^Naive:/)).toHaveText(/^([0-9]|10) of 10 rounds ended with the cache ≠ Postgres$/);
      const naive = Number((await figure(/^Naive:/).textContent())?.split(" ")[0]);
      await expect(result).toContainText(naive > 0 ? "left holding an older version" : "happened to end right");
      await expect(result).toContainText("Ours matched Postgres in every round");

      // Round by round: ten rows, ours the same as Postgres in each.
      await result.getByText("Round by round").click();
      const rounds = result.getByRole("table", { name: /What each round ended with/ });
      await expect(rounds.getByRole("row")).toHaveCount(11);
      await expect(rounds.getByRole("cell").filter({ hasText: /, stale$/ })).toHaveCount(naive);
      await expect(rounds.getByRole("cell").filter({ hasText: /, same$/ })).toHaveCount(10 + (10 - naive));

      // The scratch tasks never reached the person's tasks: the list holds what it held.
      expect((await listAllTasks(page.request)).map((t) => t.id)).toEqual([mine.id]);
      await expect(tasksTable(page).locator("tbody tr[data-task-id]")).toHaveCount(1);
      // The button is back for another run (after a short cooldown).
      await expect(page.getByRole("button", { name: "Run the race demo", exact: true })).toBeEnabled();
      await shot(page, `race-${tag}`);
    });

    test(`The cache lab has no serious or critical accessibility violations, with every panel open, on a ${size}`, async ({ page, unique }) => {
      const task = await apiCreate(page.request, unique.title("Scan the lab"));
      await apiCreate(page.request, unique.title(`A long one: ${"water every plant on every windowsill of the house, ".repeat(3)}`));
      await openLab(page);
      await expect(await valueOf(page, task.id, "Status")).toHaveText("fresh");
      await expectNoSeriousViolations(page, `/cache on a ${size}`);

      // With events, an evicted task, the race result, the audit and every legend open.
      await page.getByRole("button", { name: `Evict task ${task.id}`, exact: true }).click();
      await expect(await valueOf(page, task.id, "Status")).toHaveText("absent");
      await page.getByRole("button", { name: "Run the race demo", exact: true }).click();
      await expect(page.getByRole("status", { name: "Race demo result" })).toContainText("of 10 rounds", { timeout: 30_000 });
      await page.getByRole("button", { name: "Run audit", exact: true }).click();
      await expect(page.getByRole("status", { name: "Audit report" })).toContainText("OK: no drift");
      await openEveryPanel(page);
      await expectNoSeriousViolations(page, `/cache with every panel open on a ${size}`);
      await shot(page, `open-${tag}`);
    });
  });
}

test.describe("on a phone (390 × 844)", () => {
  test.use({ viewport: PHONE, hasTouch: true });

  test("On a phone each task is a card with its Postgres version, cached version and status in view, and nothing scrolls sideways", async ({ page, unique }) => {
    const short = await apiCreate(page.request, unique.title("Buy bread"));
    const long = await apiCreate(page.request, unique.title(`Write the quarterly report ${"with the figures from every region ".repeat(4)}`));
    const renamed = await page.request.patch(`/api/tasks/${short.id}`, { data: { done: true } });
    expect(renamed.status()).toBe(200);
    await openLab(page);

    for (const [task, version] of [
      [short, "v2"],
      [long, "v1"],
    ] as const) {
      const card = taskRow(page, task.id);
      await expect(card).toBeVisible();
      const cardBox = (await card.boundingBox())!;
      expect(cardBox.x).toBeGreaterThanOrEqual(0);
      expect(cardBox.x + cardBox.width).toBeLessThanOrEqual(PHONE.width);
      for (const [column, text] of [
        ["Postgres version", version],
        ["Cached version", version],
        ["Status", "fresh"],
      ] as const) {
        const value = await valueOf(page, task.id, column);
        await expect(value).toHaveText(text);
        await value.scrollIntoViewIfNeeded();
        await expect(value).toBeInViewport();
        const box = (await value.boundingBox())!;
        expect(box.x, `${column} of task ${task.id} starts inside its card`).toBeGreaterThanOrEqual(cardBox.x);
        expect(box.x + box.width, `${column} of task ${task.id} ends inside the screen`).toBeLessThanOrEqual(PHONE.width);
      }
      // A card, not a table row: its values stack under the title rather than in one line.
      const title = (await (await cellOf(page, task.id, "Title")).boundingBox())!;
      const status = (await (await valueOf(page, task.id, "Status")).boundingBox())!;
      expect(status.y).toBeGreaterThan(title.y);
      // Every action is a 44 px target.
      for (const name of [`Read task ${task.id}`, `Evict task ${task.id}`, `Delete task ${task.id}`]) {
        const box = (await page.getByRole("button", { name, exact: true }).boundingBox())!;
        expect(box.height, name).toBeGreaterThanOrEqual(44);
        expect(box.x, name).toBeGreaterThanOrEqual(cardBox.x);
        expect(box.x + box.width, name).toBeLessThanOrEqual(PHONE.width);
      }
    }
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);

    // Still none with the race result, its rounds, the audit and the legends open.
    await page.getByRole("button", { name: "Run the race demo", exact: true }).click();
    await expect(page.getByRole("status", { name: "Race demo result" })).toContainText("of 10 rounds", { timeout: 30_000 });
    await page.getByRole("button", { name: "Run audit", exact: true }).click();
    await expect(page.getByRole("status", { name: "Audit report" })).toContainText("OK: no drift");
    await openEveryPanel(page);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
    await shot(page, "phone-cards");
  });
});
