import type { Page } from "@playwright/test";
import { alerts, apiCreate, apiDelete, apiTask, expect, row, test } from "./fixtures";

// A page that hears of changes made elsewhere (tests/e2e/live.spec.ts) shows them before anyone
// can act on the old version. These stories are about a page that did not hear (its stream is
// down: a flaky network, a sleeping laptop), so they cut it off the event stream.
async function withoutLiveUpdates(page: Page): Promise<void> {
  await page.route("**/api/tasks/events", (route) => route.abort("connectionrefused"));
}

test("Completing a task someone else just deleted, on a page that didn't hear of it, shows an error and drops the task", async ({ page, unique }) => {
  const title = unique.title("Return the library books");
  const task = await apiCreate(page.request, title);

  await withoutLiveUpdates(page);
  await page.goto("/");
  const box = page.getByRole("checkbox", { name: title, exact: true });
  await expect(box).not.toBeChecked();

  // Someone else deletes it (another tab, another device).
  await apiDelete(page.request, task.id);

  await box.click();
  const alert = alerts(page);
  await expect(alert).toContainText("Couldn't update");
  await expect(alert).toContainText("deleted somewhere else");
  await expect(row(page, title)).toHaveCount(0);

  await alert.getByRole("button", { name: "Dismiss" }).click();
  await expect(alerts(page)).toHaveCount(0);
});

test("Completing a task someone else renamed, on a page that didn't hear of it, doesn't overwrite their change; the page shows their version", async ({
  page,
  unique,
}) => {
  const title = unique.title("Water the plants");
  const theirs = unique.title("Water the plants and the lawn");
  const task = await apiCreate(page.request, title);

  await withoutLiveUpdates(page);
  await page.goto("/");
  const box = page.getByRole("checkbox", { name: title, exact: true });
  await expect(box).toBeVisible();

  // Someone else renames it; this page still shows the old version.
  const renamed = await page.request.patch(`/api/tasks/${task.id}`, { data: { title: theirs } });
  expect(renamed.status(), await renamed.text()).toBe(200);

  await box.click();
  await expect(alerts(page)).toContainText("changed somewhere else");
  // The optimistic tick is rolled back and the list is reread: their title, not done.
  await expect(page.getByRole("checkbox", { name: theirs, exact: true })).not.toBeChecked();
  await expect(row(page, title)).toHaveCount(0);

  expect(await apiTask(page.request, theirs)).toMatchObject({ id: task.id, done: false });

  // Now that the page has the latest version, completing it works.
  await page.getByRole("checkbox", { name: theirs, exact: true }).click();
  await expect(page.locator('li[aria-busy="true"]')).toHaveCount(0);
  expect(await apiTask(page.request, theirs)).toMatchObject({ id: task.id, done: true });
});
