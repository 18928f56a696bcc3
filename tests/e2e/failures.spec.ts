import type { Page } from "@playwright/test";
import {
  addButton,
  alerts,
  apiCreate,
  apiTask,
  expect,
  expectAllSaved,
  newTaskInput,
  row,
  tasksContaining,
  test,
} from "./fixtures";

/** Makes every server action (a POST with a Next-Action header) fail as if the network dropped. */
async function cutServerActions(page: Page): Promise<() => Promise<void>> {
  const pattern = "**/*";
  await page.route(pattern, (route) => {
    const request = route.request();
    if (request.method() === "POST" && request.headers()["next-action"]) return route.abort("connectionreset");
    return route.fallback();
  });
  return () => page.unroute(pattern);
}

test("When a save can't reach the server, the change is taken back and the error is shown", async ({ page, unique }) => {
  const existing = unique.title("Pay the electricity bill");
  const fresh = unique.title("Phone the bank");
  await apiCreate(page.request, existing);

  await page.goto("/");
  const existingBox = page.getByRole("checkbox", { name: existing, exact: true });
  await expect(existingBox).not.toBeChecked();

  const restore = await cutServerActions(page);

  // Adding: the optimistic row goes away again, the title comes back into the field, and the
  // error is shown beside it.
  const input = newTaskInput(page);
  await input.fill(fresh);
  await addButton(page).click();
  await expect(input).toHaveAccessibleDescription("Couldn't reach the server. Check your connection and try again.");
  await expect(input).toHaveAttribute("aria-invalid", "true");
  await expect(input).toHaveValue(fresh);
  await expect(row(page, fresh)).toHaveCount(0);

  // Completing: the tick is rolled back and an alert says so.
  await existingBox.click();
  await expect(alerts(page).filter({ hasText: "Couldn't update" })).toBeVisible();
  await expect(existingBox).not.toBeChecked();

  // Nothing changed in Postgres.
  expect(await tasksContaining(page.request, fresh)).toEqual([]);
  expect(await apiTask(page.request, existing)).toMatchObject({ done: false, version: 1 });

  // Once the connection is back, the same actions work.
  await restore();
  await addButton(page).click();
  await expect(row(page, fresh)).toBeVisible();
  await expect(input).toHaveValue("");
  await existingBox.click();
  await expect(existingBox).toBeChecked();
  await expectAllSaved(page);
  expect(await apiTask(page.request, fresh)).toMatchObject({ done: false });
  expect(await apiTask(page.request, existing)).toMatchObject({ done: true });
});
