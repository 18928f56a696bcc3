import {
  addButton,
  alerts,
  apiCreate,
  apiTask,
  editButton,
  expect,
  expectAllSaved,
  newTaskInput,
  row,
  tasksContaining,
  test,
} from "./fixtures";

test("An invalid title shows an error beside the field and saves nothing", async ({ page, unique }) => {
  // Server actions are POSTs carrying a Next-Action header; none may be sent for an invalid title.
  const actionCalls: string[] = [];
  page.on("request", (request) => {
    if (request.method() === "POST" && request.headers()["next-action"]) actionCalls.push(request.url());
  });

  await page.goto("/");
  const input = newTaskInput(page);

  // Only spaces.
  await input.fill("   ");
  await addButton(page).click();
  const emptyError = alerts(page).filter({ hasText: "Title must not be empty." });
  await expect(emptyError).toBeVisible();
  await expect(input).toHaveAttribute("aria-invalid", "true");
  await expect(input).toHaveAccessibleDescription("Title must not be empty.");
  await expect(input).toBeFocused();

  // Too long (501 characters); the text stays so it can be fixed.
  const tooLong = `${unique.tag} ${"x".repeat(500 - unique.tag.length)}`;
  expect(tooLong).toHaveLength(501);
  await input.fill(tooLong);
  await input.press("Enter");
  await expect(alerts(page).filter({ hasText: "Title must be at most 500 characters." })).toBeVisible();
  await expect(input).toHaveAccessibleDescription("Title must be at most 500 characters.");
  await expect(input).toHaveValue(tooLong);

  // Nothing reached the server, nothing is in Postgres, and nothing shows after a reload.
  expect(actionCalls).toEqual([]);
  expect(await tasksContaining(page.request, unique.tag)).toEqual([]);
  await page.reload();
  await expect(page.getByText(unique.tag)).toHaveCount(0);

  // Fixing the title clears the error as it is typed, and then it saves.
  const fixed = unique.title("A title that fits");
  await newTaskInput(page).fill("   ");
  await newTaskInput(page).press("Enter");
  await expect(newTaskInput(page)).toHaveAttribute("aria-invalid", "true");
  await newTaskInput(page).fill(fixed);
  await expect(alerts(page)).toHaveCount(0);
  await expect(newTaskInput(page)).not.toHaveAttribute("aria-invalid", "true");
  await newTaskInput(page).press("Enter");
  await expect(row(page, fixed)).toBeVisible();
  await expectAllSaved(page);
  expect(await apiTask(page.request, fixed)).toMatchObject({ title: fixed, done: false });
});

test("Clearing a title while editing shows an error beside it and keeps the saved title", async ({ page, unique }) => {
  const title = unique.title("Renew the passport");
  const created = await apiCreate(page.request, title);

  await page.goto("/");
  await editButton(page, title).click();
  const editor = page.getByRole("textbox", { name: `Edit title of "${title}"`, exact: true });
  await editor.fill("   ");
  await editor.press("Enter");

  // Still editing, with the error beside the field.
  await expect(editor).toBeFocused();
  await expect(editor).toHaveAttribute("aria-invalid", "true");
  await expect(row(page, title).getByRole("alert")).toHaveText("Title must not be empty.");
  await expect(editor).toHaveAccessibleDescription(/Title must not be empty\./);

  // Escape gives the saved title back, untouched.
  await editor.press("Escape");
  await expect(editor).toHaveCount(0);
  await expect(row(page, title).getByRole("alert")).toHaveCount(0);
  await expect(editButton(page, title)).toBeFocused();

  await page.reload();
  await expect(row(page, title)).toBeVisible();
  expect(await apiTask(page.request, title)).toMatchObject({ id: created.id, title, version: created.version });
});
