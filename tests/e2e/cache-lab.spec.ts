import type { Locator, Page } from "@playwright/test";
import { apiCreate, expect, test } from "./fixtures";

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
  await expect(page.getByRole("status", { name: "Last write" })).toContainText(
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
