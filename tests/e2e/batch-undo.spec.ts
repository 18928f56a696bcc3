import type { Locator, Page, Request } from "@playwright/test";
import {
  alerts,
  apiCreate,
  apiTask,
  deleteButton,
  DESKTOP,
  editButton,
  expect,
  expectAllSaved,
  listAllTasks,
  openCount,
  PHONE,
  row,
  tasksContaining,
  test,
  type ApiTask,
} from "./fixtures";

// Issue 10, items 4 and 5: every destructive action has an Undo of its own (delete, tick, edit,
// Mark all done, Clear completed), several can be pending at once, and each reverts only its own
// action. Mark all done and Clear completed are one batch call each, under an idempotency key that
// a retry reuses.


/** The toast that says `text` (several can be up at once). */
function toast(page: Page, text: string): Locator {
  return page.getByTestId("toast").filter({ hasText: text });
}

function tab(page: Page, name: string): Locator {
  return page.getByRole("tablist", { name: "Views" }).getByRole("tab", { name, exact: true });
}

/** Server-action POSTs whose body carries `marker` (the batch's op, e.g. `"op":"complete"`). */
function recordActions(page: Page, marker: string): Request[] {
  const seen: Request[] = [];
  page.on("request", (request) => {
    if (request.method() === "POST" && request.headers()["next-action"] && (request.postData() ?? "").includes(marker)) seen.push(request);
  });
  return seen;
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}/;

for (const [size, viewport] of [["desktop (1280 × 800)", DESKTOP], ["phone (390 × 844)", PHONE]] as const) {
  test.describe(`on a ${size}`, () => {
    test.use({ viewport });

    test(`Mark all done completes every open task shown in one batch, and Undo reopens just those, on a ${size}`, async ({ page, unique }) => {
      const titles = [unique.title("Buy milk"), unique.title("Call the bank"), unique.title("Fix the bike")];
      for (const title of titles) await apiCreate(page.request, title);
      const alreadyDone = unique.title("Water the plants");
      await apiCreate(page.request, alreadyDone, { done: true });
      const batches = recordActions(page, '"op":"complete"');

      await page.goto("/");
      await expect(openCount(page)).toHaveText("3 open · 1 done · 4 tasks");
      const markAll = page.getByRole("button", { name: "Mark all done", exact: true });
      await markAll.click();
      for (const title of titles) await expect(page.getByRole("checkbox", { name: title, exact: true })).toBeChecked();
      await expect(openCount(page)).toHaveText("0 open · 4 done · 4 tasks");
      const marked = toast(page, "Marked 3 tasks done");
      await expect(marked).toBeVisible();
      await expect(markAll).toHaveAttribute("aria-disabled", "true");
      await expectAllSaved(page);
      expect((await tasksContaining(page.request, unique.tag)).every((t) => t.done)).toBe(true);
      expect(batches, "batch calls for one Mark all done").toHaveLength(1);
      expect(batches[0]!.postData()).toMatch(UUID);

      // Undo: the three are open again; the one that was done before stays done.
      await marked.getByRole("button", { name: "Undo marking 3 tasks done" }).click();
      await expect(toast(page, "Reopened 3 tasks")).toBeVisible();
      for (const title of titles) await expect(page.getByRole("checkbox", { name: title, exact: true })).not.toBeChecked();
      await expect(page.getByRole("checkbox", { name: alreadyDone, exact: true })).toBeChecked();
      await expect(openCount(page)).toHaveText("3 open · 1 done · 4 tasks");
      for (const title of titles) expect(await apiTask(page.request, title)).toMatchObject({ done: false });
      expect(await apiTask(page.request, alreadyDone)).toMatchObject({ done: true });
    });

    test(`Clear completed deletes every completed task shown in one batch, and Undo brings the same tasks back, on a ${size}`, async ({
      page,
      unique,
    }) => {
      const open = unique.title("Plan the sprint");
      await apiCreate(page.request, open);
      const done = [await apiCreate(page.request, unique.title("Send the invoice"), { done: true }), await apiCreate(page.request, unique.title("Pay the rent"), { done: true })];

      await page.goto("/");
      await page.getByRole("button", { name: "Clear completed" }).click();
      for (const task of done) await expect(row(page, task.title)).toHaveCount(0);
      await expect(openCount(page)).toHaveText("1 open · 0 done · 1 task");
      const cleared = toast(page, "Cleared 2 completed tasks");
      await expect(cleared).toBeVisible();
      await expect(page.getByRole("button", { name: "Clear completed" })).toHaveAttribute("aria-disabled", "true");
      await expect.poll(async () => (await tasksContaining(page.request, unique.tag)).map((t) => t.title)).toEqual([open]);

      await cleared.getByRole("button", { name: "Undo clearing 2 completed tasks" }).click();
      await expect(toast(page, "Restored 2 tasks")).toBeVisible();
      // Back in their own places (newest first), still done: the very same tasks.
      await expect(page.getByRole("tabpanel").getByRole("checkbox")).toHaveCount(3);
      const boxes = await page.getByRole("tabpanel").getByRole("checkbox").evaluateAll((els) => els.map((e) => e.getAttribute("aria-label")));
      expect(boxes).toEqual([done[1]!.title, done[0]!.title, open]);
      await expect(openCount(page)).toHaveText("1 open · 2 done · 3 tasks");
      for (const task of done) {
        expect(await apiTask(page.request, task.title)).toMatchObject({ id: task.id, done: true });
      }
    });
  });
}

test.describe("on a desktop (1280 × 800)", () => {
  test.use({ viewport: DESKTOP });

  test("Two deletes pending at once: undoing the first brings only it back, the second stays deleted", async ({ page, unique }) => {
    const first = await apiCreate(page.request, unique.title("Renew the passport"));
    const second = await apiCreate(page.request, unique.title("Book the flights"));

    await page.goto("/");
    await deleteButton(page, first.title).click();
    await expect(toast(page, `Deleted “${first.title}”`)).toBeVisible();
    await deleteButton(page, second.title).click();
    await expect(toast(page, `Deleted “${second.title}”`)).toBeVisible();
    // Both pending, each with its own Undo, named for its task.
    await expect(page.getByTestId("toast")).toHaveCount(2);
    expect(await tasksContaining(page.request, unique.tag)).toEqual([]);

    await toast(page, `Deleted “${first.title}”`).getByRole("button", { name: `Undo delete of “${first.title}”` }).click();
    await expect(row(page, first.title)).toBeVisible();
    await expect(toast(page, "Task restored")).toBeVisible();
    await expect(row(page, second.title)).toHaveCount(0);
    // The second's offer is still there, untouched.
    await expect(toast(page, `Deleted “${second.title}”`).getByRole("button", { name: `Undo delete of “${second.title}”` })).toBeVisible();

    expect(await apiTask(page.request, first.title)).toMatchObject({ id: first.id, version: first.version + 2 });
    expect(await apiTask(page.request, second.title)).toBeUndefined();
    await page.reload();
    await expect(row(page, first.title)).toBeVisible();
    await expect(row(page, second.title)).toHaveCount(0);
  });

  test("A toast goes by itself after about 8 seconds, or at once with its close button, and is announced politely", async ({ page, unique }) => {
    const title = unique.title("Phone the plumber");
    await apiCreate(page.request, title);
    await page.goto("/");
    const region = page.locator(".toast-region");
    await expect(region).toHaveAttribute("aria-live", "polite");
    await expect(region).toHaveAttribute("role", "status");

    const box = page.getByRole("checkbox", { name: title, exact: true });
    await box.click();
    const ticked = toast(page, `Completed “${title}”`);
    await expect(ticked).toBeVisible();
    await page.mouse.move(0, 0);
    await expect(ticked).toHaveCount(0, { timeout: 12_000 });

    await box.click();
    const reopened = toast(page, `Reopened “${title}”`);
    await reopened.getByRole("button", { name: `Dismiss notification: Reopened “${title}”` }).click();
    await expect(reopened).toHaveCount(0);
  });

  test("Undo of a tick unticks it again, and undo of an untick ticks it again, each only its own", async ({ page, unique }) => {
    const a = unique.title("Empty the dishwasher");
    const b = unique.title("Take out the recycling");
    await apiCreate(page.request, a);
    await apiCreate(page.request, b, { done: true });
    await page.goto("/");

    const aBox = page.getByRole("checkbox", { name: a, exact: true });
    const bBox = page.getByRole("checkbox", { name: b, exact: true });
    await aBox.click();
    await bBox.click();
    await expect(toast(page, `Completed “${a}”`)).toBeVisible();
    await expect(toast(page, `Reopened “${b}”`)).toBeVisible();
    await expect(openCount(page)).toHaveText("1 open · 1 done · 2 tasks");

    await toast(page, `Completed “${a}”`).getByRole("button", { name: `Undo completing “${a}”` }).click();
    await expect(aBox).not.toBeChecked();
    await expect(bBox).not.toBeChecked();
    await expect(toast(page, `“${a}” is open again`)).toBeVisible();
    await expect(openCount(page)).toHaveText("2 open · 0 done · 2 tasks");
    await expectAllSaved(page);
    expect(await apiTask(page.request, a)).toMatchObject({ done: false });
    expect(await apiTask(page.request, b)).toMatchObject({ done: false });

    await toast(page, `Reopened “${b}”`).getByRole("button", { name: `Undo reopening “${b}”` }).click();
    await expect(bBox).toBeChecked();
    await expectAllSaved(page);
    expect(await apiTask(page.request, b)).toMatchObject({ done: true });
  });

  test("A tick done in the Active view leaves it; its Undo brings the task back into Active", async ({ page, unique }) => {
    const title = unique.title("Defrost the freezer");
    await apiCreate(page.request, title);
    await page.goto("/");
    await tab(page, "Active 1").click();
    await page.getByRole("checkbox", { name: title, exact: true }).click();
    await expect(row(page, title)).toHaveCount(0);
    await expect(page.getByText("Nothing open. Well done!")).toBeVisible();
    await toast(page, `Completed “${title}”`).getByRole("button", { name: `Undo completing “${title}”` }).click();
    const box = page.getByRole("checkbox", { name: title, exact: true });
    await expect(box).not.toBeChecked();
    await expect(box).toBeFocused();
    await expect(tab(page, "Active 1")).toBeVisible();
  });

  test("Undo of an edit puts the old title and due date back, but not over a change made since", async ({ page, unique }) => {
    const title = unique.title("Buy paint");
    const renamed = unique.title("Buy white paint");
    const theirs = unique.title("Buy white paint and brushes");
    await apiCreate(page.request, title, { dueOn: "2031-03-04" });
    await page.goto("/");

    await editButton(page, title).click();
    await page.getByRole("textbox", { name: `Edit title of "${title}"`, exact: true }).fill(renamed);
    await page.getByLabel(`Due date of "${title}"`, { exact: true }).fill("2031-04-05");
    await page.getByLabel(`Due date of "${title}"`, { exact: true }).press("Enter");
    const edited = toast(page, `Edited “${renamed}”`);
    await expect(edited).toBeVisible();
    await expect(row(page, renamed).locator("time")).toHaveAttribute("datetime", "2031-04-05");
    expect(await apiTask(page.request, renamed)).toMatchObject({ title: renamed, dueOn: "2031-04-05" });

    await edited.getByRole("button", { name: `Undo edit of “${renamed}”` }).click();
    await expect(row(page, title)).toBeVisible();
    await expect(row(page, title).locator("time")).toHaveAttribute("datetime", "2031-03-04");
    await expect(toast(page, `Edit of “${renamed}” undone`)).toBeVisible();
    await expectAllSaved(page);
    const back = (await apiTask(page.request, title)) as ApiTask;
    expect(back).toMatchObject({ title, dueOn: "2031-03-04", done: false });

    // Edit once more; then someone else renames it (another tab); Undo must not clobber their change.
    await editButton(page, title).click();
    await page.getByRole("textbox", { name: `Edit title of "${title}"`, exact: true }).fill(renamed);
    await page.getByRole("textbox", { name: `Edit title of "${title}"`, exact: true }).press("Enter");
    const again = toast(page, `Edited “${renamed}”`);
    await expect(again).toBeVisible();
    await expectAllSaved(page);
    const patched = await page.request.patch(`/api/tasks/${back.id}`, { data: { title: theirs } });
    expect(patched.status(), await patched.text()).toBe(200);

    await again.getByRole("button", { name: `Undo edit of “${renamed}”` }).click();
    await expect(alerts(page).filter({ hasText: "changed since" })).toBeVisible();
    await expect(again).toHaveCount(0);
    // Their title stands, and the page shows it after its reread.
    await expect(row(page, theirs)).toBeVisible();
    expect(await apiTask(page.request, theirs)).toMatchObject({ id: back.id, title: theirs });
    expect(await apiTask(page.request, title)).toBeUndefined();
  });

  test("A Mark all done whose answer is lost is sent again under the same idempotency key, and done once", async ({ page, unique }) => {
    const titles = [unique.title("Sweep the porch"), unique.title("Oil the hinges")];
    const tasks = [];
    for (const title of titles) tasks.push(await apiCreate(page.request, title));
    const batches = recordActions(page, '"op":"complete"');

    await page.goto("/");
    // The first batch reaches the server, but its answer never reaches the page.
    let lost = 0;
    await page.route("**/*", async (route) => {
      const request = route.request();
      if (lost === 0 && request.method() === "POST" && request.headers()["next-action"] && (request.postData() ?? "").includes('"op":"complete"')) {
        lost++;
        await route.fetch();
        return route.abort("connectionreset");
      }
      return route.fallback();
    });

    await page.getByRole("button", { name: "Mark all done", exact: true }).click();
    await expect(toast(page, "Marked 2 tasks done")).toBeVisible();
    await expectAllSaved(page);
    await expect(alerts(page)).toHaveCount(0);
    expect(lost).toBe(1);
    expect(batches).toHaveLength(2);
    const keys = batches.map((r) => UUID.exec(r.postData() ?? "")?.[0]);
    expect(keys[0]).toBeTruthy();
    expect(keys[1]).toBe(keys[0]);
    // Done once: each task went up exactly one version.
    const after = await listAllTasks(page.request);
    for (const task of tasks) expect(after.find((t) => t.id === task.id)).toMatchObject({ done: true, version: task.version + 1 });
  });
});
