import type { Locator, Page } from "@playwright/test";
import {
  addButton,
  apiCreate,
  apiDelete,
  apiTask,
  type ApiTask,
  deleteButton,
  editButton,
  expect,
  expectAllSaved,
  newTaskInput,
  openCount,
  readOpenCount,
  row,
  taskTitle,
  test,
} from "./fixtures";

/** The count line's start for `n` open tasks: "3 open · 1 done · 4 tasks" starts "3 open". */
function openIs(n: number): RegExp {
  return new RegExp(`^${n} open\\b`);
}

/** Presses Tab until `target` has focus (the add form's date field is several tab stops in Chromium). */
async function tabTo(page: Page, target: Locator, most = 12): Promise<void> {
  for (let i = 0; i < most && !(await target.evaluate((el) => el === document.activeElement)); i++) {
    await page.keyboard.press("Tab");
  }
  await expect(target).toBeFocused();
}

test("A person adds, edits, completes and deletes tasks, and they persist across reload", async ({ page, unique }) => {
  const milk = unique.title("Buy oat milk");
  const plumber = unique.title("Call the plumber");
  const bread = unique.title("Buy oat milk and bread");

  await page.goto("/");
  await expect(page).toHaveTitle("Tasks · writethrough-tasks");
  await expect(page.getByRole("heading", { level: 1, name: "Tasks" })).toBeVisible();
  await expect(page.getByRole("contentinfo")).toHaveText(
    "Postgres is the source of truth; every write goes through the Redis cache.",
  );

  // Add two tasks, one with the button and one with Enter.
  const input = newTaskInput(page);
  await input.fill(milk);
  await addButton(page).click();
  await expect(input).toHaveValue("");
  await expect(input).toBeFocused();
  await input.fill(plumber);
  await input.press("Enter");

  // Newest first, at the top of the list.
  const items = page.getByRole("listitem");
  await expect(items.nth(0)).toContainText(plumber);
  await expect(items.nth(1)).toContainText(milk);
  await expectAllSaved(page);

  // Edit one inline; Enter saves and focus goes back to its Edit button.
  await editButton(page, milk).click();
  const editor = page.getByRole("textbox", { name: `Edit title of "${milk}"`, exact: true });
  await expect(editor).toBeFocused();
  await expect(editor).toHaveValue(milk);
  await editor.fill(bread);
  await editor.press("Enter");
  await expect(page.getByRole("checkbox", { name: bread, exact: true })).toBeVisible();
  await expect(page.getByRole("checkbox", { name: milk, exact: true })).toHaveCount(0);
  await expect(editButton(page, bread)).toBeFocused();

  // Complete it: checked, struck through.
  const breadBox = page.getByRole("checkbox", { name: bread, exact: true });
  await breadBox.click();
  await expect(breadBox).toBeChecked();
  await expect(taskTitle(page, bread)).toHaveCSS("text-decoration-line", "line-through");
  await expectAllSaved(page);

  // Postgres has exactly that (read back through the REST API)...
  expect(await apiTask(page.request, bread)).toMatchObject({ title: bread, done: true });
  expect(await apiTask(page.request, plumber)).toMatchObject({ title: plumber, done: false });
  expect(await apiTask(page.request, milk)).toBeUndefined();

  // ...and so does the page after a reload.
  await page.reload();
  await expect(page.getByRole("checkbox", { name: bread, exact: true })).toBeChecked();
  await expect(page.getByRole("checkbox", { name: plumber, exact: true })).not.toBeChecked();
  await expect(page.getByText(milk, { exact: true })).toHaveCount(0);

  // Delete one: it leaves at once, and a toast confirms once the server has deleted it (and offers Undo).
  await deleteButton(page, plumber).click();
  await expect(row(page, plumber)).toHaveCount(0);
  await expect(page.getByRole("status").filter({ hasText: "Deleted “" })).toBeVisible();
  expect(await apiTask(page.request, plumber)).toBeUndefined();

  await page.reload();
  await expect(row(page, bread)).toBeVisible();
  await expect(row(page, plumber)).toHaveCount(0);
});

test("The count of open tasks follows adding, completing, reopening and deleting", async ({ page, unique }) => {
  const report = unique.title("Draft the quarterly report");
  const tyres = unique.title("Check the tyre pressure");

  await page.goto("/");
  const before = await readOpenCount(page);

  const input = newTaskInput(page);
  await input.fill(report);
  await input.press("Enter");
  await expect(openCount(page)).toHaveText(openIs(before + 1));
  await input.fill(tyres);
  await input.press("Enter");
  await expect(openCount(page)).toHaveText(openIs(before + 2));
  await expectAllSaved(page);

  const reportBox = page.getByRole("checkbox", { name: report, exact: true });
  const tyresBox = page.getByRole("checkbox", { name: tyres, exact: true });
  await reportBox.click();
  await expect(openCount(page)).toHaveText(openIs(before + 1));
  await tyresBox.click();
  await expect(openCount(page)).toHaveText(openIs(before));
  await reportBox.click();
  await expect(reportBox).not.toBeChecked();
  await expect(openCount(page)).toHaveText(openIs(before + 1));
  await expectAllSaved(page);

  // Deleting the open one takes it off the count; the done one never counted.
  await deleteButton(page, report).click();
  await expect(openCount(page)).toHaveText(openIs(before));
  await expect(page.getByRole("status").filter({ hasText: "Deleted “" })).toBeVisible();

  // After a reload the count is computed from what Postgres holds: one per unticked task shown.
  // (Not simply `before`: with more than a page of tasks, the new ones push older ones off page one.)
  await page.reload();
  await expect(tyresBox).toBeChecked();
  const unticked = await page.getByRole("checkbox", { checked: false }).count();
  await expect(openCount(page)).toHaveText(openIs(unticked));
});

test("Someone using only the keyboard adds, completes, renames and deletes tasks, and focus stays put", async ({
  page,
  unique,
}) => {
  const sprint = unique.title("Plan the sprint");
  const invoice = unique.title("Send the invoice");
  const finalInvoice = unique.title("Send the final invoice");

  await page.goto("/");
  // The header comes first: who is signed in, and the way out; then the new-task field.
  await page.keyboard.press("Tab");
  await expect(page.getByRole("button", { name: "Sign out" })).toBeFocused();
  await page.keyboard.press("Tab");
  const input = newTaskInput(page);
  await expect(input).toBeFocused();

  // Type, Enter; the field empties and keeps focus, ready for the next task.
  await page.keyboard.type(sprint);
  await page.keyboard.press("Enter");
  await expect(row(page, sprint)).toBeVisible();
  await expect(input).toBeFocused();
  await expect(input).toHaveValue("");
  await page.keyboard.type(invoice);
  await page.keyboard.press("Enter");
  await expect(page.getByRole("listitem").first()).toContainText(invoice);
  await expect(input).toBeFocused();
  await expect(input).toHaveValue("");
  await expectAllSaved(page);

  // Tab past the due date and Add, the views (one tab stop) and the list's two batch buttons, to
  // the newest task, and complete it with Space.
  await tabTo(page, addButton(page));
  await page.keyboard.press("Tab");
  await expect(page.getByRole("tab", { name: /^All \d+$/ })).toBeFocused();
  await page.keyboard.press("Tab");
  await expect(page.getByRole("button", { name: "Mark all done", exact: true })).toBeFocused();
  await page.keyboard.press("Tab");
  await expect(page.getByRole("button", { name: "Clear completed" })).toBeFocused();
  await page.keyboard.press("Tab");
  const invoiceBox = page.getByRole("checkbox", { name: invoice, exact: true });
  await expect(invoiceBox).toBeFocused();
  await page.keyboard.press("Space");
  await expect(invoiceBox).toBeChecked();

  // Rename it: past its title (a tab stop of its own), Enter on Edit opens the field with the
  // title selected; Enter saves.
  await page.keyboard.press("Tab");
  await expect(taskTitle(page, invoice)).toBeFocused();
  await page.keyboard.press("Tab");
  await expect(editButton(page, invoice)).toBeFocused();
  await page.keyboard.press("Enter");
  const editor = page.getByRole("textbox", { name: `Edit title of "${invoice}"`, exact: true });
  await expect(editor).toBeFocused();
  await page.keyboard.type(finalInvoice);
  await page.keyboard.press("Enter");
  const editFinal = editButton(page, finalInvoice);
  await expect(editFinal).toBeFocused();

  // Escape cancels an edit and returns focus to Edit.
  await page.keyboard.press("Enter");
  const editor2 = page.getByRole("textbox", { name: `Edit title of "${finalInvoice}"`, exact: true });
  await expect(editor2).toBeFocused();
  await page.keyboard.type("something else entirely");
  await page.keyboard.press("Escape");
  await expect(editor2).toHaveCount(0);
  await expect(editFinal).toBeFocused();
  await expect(page.getByRole("checkbox", { name: finalInvoice, exact: true })).toBeChecked();

  // Delete it; focus moves on to the next task instead of getting lost.
  await page.keyboard.press("Tab");
  await expect(deleteButton(page, finalInvoice)).toBeFocused();
  await page.keyboard.press("Enter");
  await expect(row(page, finalInvoice)).toHaveCount(0);
  await expect(page.getByRole("checkbox", { name: sprint, exact: true })).toBeFocused();
  await expect(page.getByRole("status").filter({ hasText: "Deleted “" })).toBeVisible();

  await page.reload();
  await expect(page.getByRole("checkbox", { name: sprint, exact: true })).not.toBeChecked();
  await expect(row(page, finalInvoice)).toHaveCount(0);
  await expect(row(page, invoice)).toHaveCount(0);
  expect(await apiTask(page.request, sprint)).toMatchObject({ done: false });
});

test("A person deletes a task by mistake and undoes it", async ({ page, unique }) => {
  const title = unique.title("Renew the passport");
  const response = await page.request.post("/api/tasks", { data: { title, done: true } });
  expect(response.status(), await response.text()).toBe(201);
  const original = (await response.json()) as ApiTask;

  await page.goto("/");
  const box = page.getByRole("checkbox", { name: title, exact: true });
  await expect(box).toBeChecked();

  // Delete it: the row leaves, and the toast says so and offers Undo.
  await deleteButton(page, title).click();
  await expect(row(page, title)).toHaveCount(0);
  const toast = page.getByRole("status").filter({ hasText: "Deleted “" });
  await expect(toast).toBeVisible();
  const undo = toast.getByRole("button", { name: `Undo delete of “${title}”`, exact: true });
  await expect(undo).toHaveText("Undo");
  // The delete really happened: Undo is not a delay in disguise.
  expect(await apiTask(page.request, title)).toBeUndefined();

  // Undo is reachable from the keyboard: Tab to it, press Enter.
  for (let i = 0; i < 100 && !(await undo.evaluate((el) => el === document.activeElement)); i++) {
    await page.keyboard.press("Tab");
  }
  await expect(undo).toBeFocused();
  await page.keyboard.press("Enter");

  // It's back, still done, and focused; the toast says so.
  await expect(box).toBeChecked();
  await expect(box).toBeFocused();
  await expect(page.getByRole("status").filter({ hasText: "Task restored" })).toBeVisible();
  await expectAllSaved(page);

  // Postgres has the very same task again: same id, at the version after its delete's.
  const restored = await apiTask(page.request, title);
  expect(restored).toMatchObject({ id: original.id, title, done: true, version: original.version + 2 });

  await page.reload();
  await expect(page.getByRole("checkbox", { name: title, exact: true })).toBeChecked();

  await apiDelete(page.request, restored!.id);
  expect(await apiTask(page.request, title)).toBeUndefined();
});

test("A long list shows the newest tasks first and a Load more button for the rest", async ({ page, unique }) => {
  // 51 tasks: one more than the first page holds. Oldest first, so titles[0] is on page two.
  const titles: string[] = [];
  for (let i = 1; i <= 51; i++) {
    const title = unique.title(`Bulk task ${i}`);
    await apiCreate(page.request, title);
    titles.push(title);
  }
  const oldest = titles[0]!;
  const newest = titles[50]!;

  await page.goto("/");
  await expect(page.getByRole("listitem").first()).toContainText(newest);
  await expect(row(page, titles[1]!)).toBeVisible();
  await expect(row(page, oldest)).toHaveCount(0);

  await page.getByRole("button", { name: "Load more" }).click();
  await expect(row(page, oldest)).toBeVisible();
  // Each task appears once.
  await expect(row(page, newest)).toHaveCount(1);
  await expect(row(page, titles[1]!)).toHaveCount(1);
});
