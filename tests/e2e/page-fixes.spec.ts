import AxeBuilder from "@axe-core/playwright";
import { test as base, type Locator, type Page, type Request } from "@playwright/test";
import {
  apiCreate,
  apiDelete,
  apiTask,
  deleteButton,
  DESKTOP,
  editButton,
  expect,
  expectAllSaved,
  listAllTasks,
  newAccount,
  newTaskInput,
  PHONE,
  row,
  taskTitle,
  test,
} from "./fixtures";

// The task page's fixes (issue 10, item 5): the checkbox is its own target and the title edits,
// a counter near the title limit, contrast checked by axe-core, a phone layout with 44 px
// targets, a footer that names the cache in use, and a session without aborted requests.


const TITLE_HINT = "Double-click, or press Enter or F2, to edit this title.";

/** Server-action calls the page has sent (POSTs naming an action), counted as they go. */
function countActions(page: Page): () => number {
  let n = 0;
  page.on("request", (request) => {
    if (request.method() === "POST" && request.headers()["next-action"]) n++;
  });
  return () => n;
}

test.describe("on a desktop (1280 × 800)", () => {
  test.use({ viewport: DESKTOP });

  test("Clicking a task's title leaves it as it is; double-click, Enter or F2 on the title edits it", async ({ page, unique }) => {
    const title = unique.title("Book the dentist");
    const renamed = unique.title("Book the dentist for Tuesday");
    await apiCreate(page.request, title);
    const actions = countActions(page);

    await page.goto("/");
    const box = page.getByRole("checkbox", { name: title, exact: true });
    const name = taskTitle(page, title);
    await expect(name).toHaveAccessibleDescription(TITLE_HINT);

    // A click on the title is not a click on the checkbox: nothing ticks, nothing is sent.
    await name.click();
    await expect(box).not.toBeChecked();
    await expect(page.getByRole("textbox", { name: `Edit title of "${title}"` })).toHaveCount(0);

    // Double-click opens the editor with the title; Escape gives focus back to the title.
    await name.dblclick();
    const editor = page.getByRole("textbox", { name: `Edit title of "${title}"`, exact: true });
    await expect(editor).toBeFocused();
    await expect(editor).toHaveValue(title);
    await editor.press("Escape");
    await expect(editor).toHaveCount(0);
    await expect(name).toBeFocused();
    await expect(box).not.toBeChecked();
    expect(actions(), "server actions sent by clicking the title").toBe(0);

    // From the keyboard: the title is the tab stop after its checkbox, and Enter edits it.
    await box.focus();
    await page.keyboard.press("Tab");
    await expect(name).toBeFocused();
    await page.keyboard.press("Enter");
    await expect(editor).toBeFocused();
    await editor.fill(renamed);
    await editor.press("Enter");
    const renamedTitle = taskTitle(page, renamed);
    await expect(renamedTitle).toBeFocused();
    await expectAllSaved(page);
    expect(await apiTask(page.request, renamed)).toMatchObject({ title: renamed, done: false });

    // F2 edits too.
    await page.keyboard.press("F2");
    const editor2 = page.getByRole("textbox", { name: `Edit title of "${renamed}"`, exact: true });
    await expect(editor2).toBeFocused();
    await page.keyboard.press("Escape");
    await expect(renamedTitle).toBeFocused();

    // The checkbox itself still ticks the task.
    const renamedBox = page.getByRole("checkbox", { name: renamed, exact: true });
    await renamedBox.click();
    await expect(renamedBox).toBeChecked();
    await expectAllSaved(page);
    expect(await apiTask(page.request, renamed)).toMatchObject({ done: true });
  });

  test("The title field shows a counter near its limit, and says it politely once typing pauses", async ({ page, unique }) => {
    await page.goto("/");
    const input = newTaskInput(page);
    const form = page.locator("form.add-form");
    const counter = form.locator(".title-counter");
    const live = form.locator('[aria-live="polite"]');
    // The limit is still enforced by the field (in UTF-16 units, room for 500 emoji).
    await expect(input).toHaveAttribute("maxlength", "1000");

    // Far from the limit: no counter, and nothing for a screen reader.
    await input.fill("x".repeat(399));
    await expect(counter).toHaveCount(0);
    await expect(live).toHaveText("");

    // From 400 of 500 characters on: the count, shown at once and said once typing pauses.
    await input.fill("x".repeat(420));
    await expect(counter).toHaveText("420 / 500");
    await expect(counter).toHaveAttribute("aria-hidden", "true");
    await expect(live).toHaveText("420 of 500 characters, 80 left.");

    // Typing on: the counter follows every key; the live region changes once, after the last one.
    await live.evaluate((el) => {
      const changes = { n: 0 };
      (window as unknown as { liveChanges: typeof changes }).liveChanges = changes;
      new MutationObserver(() => changes.n++).observe(el, { childList: true, characterData: true, subtree: true });
    });
    await input.press("End");
    await page.keyboard.type("y".repeat(20), { delay: 25 });
    await expect(counter).toHaveText("440 / 500");
    await expect(live).toHaveText("440 of 500 characters, 60 left.");
    const changes = await page.evaluate(() => (window as unknown as { liveChanges: { n: number } }).liveChanges.n);
    expect(changes, "live-region updates for 20 keystrokes").toBeLessThanOrEqual(3);

    // Past the limit the counter says so (and Add shows the schema's message, as before).
    await input.fill("x".repeat(501));
    await expect(counter).toHaveText("501 / 500");
    await expect(counter).toHaveClass(/title-counter-over/);
    await expect(live).toHaveText("501 of 500 characters: 1 too many.");
    await input.press("Enter");
    await expect(page.getByRole("main").getByRole("alert").filter({ hasText: "Title must be at most 500 characters." })).toBeVisible();
    await input.fill("");
    await expect(counter).toHaveCount(0);
    await expect(live).toHaveText("");

    // The inline editor is the same field, with the same counter.
    const title = unique.title("Renew the library card");
    await apiCreate(page.request, title);
    await page.reload();
    await editButton(page, title).click();
    const editor = page.getByRole("textbox", { name: `Edit title of "${title}"`, exact: true });
    await expect(editor).toHaveAttribute("maxlength", "1000");
    await editor.fill("z".repeat(450));
    await expect(row(page, title).locator(".title-counter")).toHaveText("450 / 500");
    await expect(row(page, title).locator('[aria-live="polite"]')).toHaveText("450 of 500 characters, 50 left.");
    await editor.press("Escape");
  });

  test("On a wide screen the rows keep their look: the words Edit and Delete, named for their task", async ({ page, unique }) => {
    const title = unique.title("Call the bank");
    await apiCreate(page.request, title);
    await page.goto("/");
    await expect(editButton(page, title)).toHaveText("Edit");
    await expect(deleteButton(page, title)).toHaveText("Delete");
    await expect(editButton(page, title).locator(".task-action-icon")).toBeHidden();
    const rowBox = await boxOf(row(page, title));
    expect(rowBox.height, "row height").toBeLessThanOrEqual(60);
    const checkBox = await boxOf(page.getByRole("checkbox", { name: title, exact: true }));
    expect(checkBox.width, "checkbox width").toBe(20);
  });

  test("The footer names the cache the server really uses", async ({ page }) => {
    const health = await page.request.get("/api/health");
    expect(health.status()).toBe(200);
    const { cache } = (await health.json()) as { cache: { driver: "redis" | "upstash" | "memory" | "none" } };
    const named = { redis: "Redis cache", upstash: "Upstash Redis cache", memory: "in-process memory cache", none: "cache lab" }[cache.driver];

    await page.goto("/");
    const footer = page.getByRole("contentinfo");
    await expect(footer.getByRole("link")).toHaveText(named);
    await expect(footer.getByRole("link")).toHaveAttribute("href", "/cache");
    if (cache.driver === "memory" || cache.driver === "none") await expect(footer).not.toContainText("Redis");
  });
});

base.describe("on a desktop (1280 × 800), signed out", () => {
  base.use({ viewport: DESKTOP });

  base("A normal session (sign up, add, tick, edit, delete, undo) leaves no failed or aborted request in the network log", async ({ page }) => {
    const failed: string[] = [];
    // Requests under way, but the page's event stream, which stays open as long as the page does.
    const inFlight = new Set<Request>();
    const isStream = (url: string) => url.endsWith("/api/tasks/events");
    page.on("request", (request) => void (isStream(request.url()) || inFlight.add(request)));
    page.on("requestfinished", (request) => void inFlight.delete(request));
    page.on("requestfailed", (request) => void inFlight.delete(request));
    page.on("requestfailed", (request) => {
      const action = request.headers()["next-action"] ? " (a server action)" : "";
      failed.push(`${request.method()} ${request.url()}${action}: ${request.failure()?.errorText ?? "failed"}`);
    });

    const person = newAccount("session");
    await page.goto("/sign-up");
    await page.getByLabel("Name").fill(person.name);
    await page.getByLabel("Email").fill(person.email);
    await page.getByLabel("Password").fill(person.password);
    await page.getByRole("button", { name: "Create account" }).click();
    await expect(page).toHaveURL(/\/$/);
    await expect(page.getByText(person.email)).toBeVisible();

    const [first, second, third] = ["Pick up the parcel", "Pay the electricity bill", "Plan the weekend"];
    const input = newTaskInput(page);
    for (const title of [first, second, third]) {
      await input.fill(title);
      await input.press("Enter");
      await expect(row(page, title)).toBeVisible();
    }
    await expectAllSaved(page);

    await page.getByRole("checkbox", { name: second, exact: true }).click();
    await expectAllSaved(page);

    await taskTitle(page, first).dblclick();
    const editor = page.getByRole("textbox", { name: `Edit title of "${first}"`, exact: true });
    await editor.fill(`${first} from the post office`);
    await editor.press("Enter");
    await expectAllSaved(page);

    await deleteButton(page, third).click();
    const toast = page.getByRole("status").filter({ hasText: "Deleted “" });
    await toast.getByRole("button", { name: `Undo delete of “${third}”` }).click();
    await expect(page.getByRole("status").filter({ hasText: "Task restored" })).toBeVisible();
    await expect(row(page, third)).toBeVisible();
    await expectAllSaved(page);
    // Whatever is still in flight finishes (or fails) before the log is read ("networkidle" never
    // comes while the event stream is open).
    const pending = () => [...inFlight].map((r) => `${r.method()} ${r.url()}`);
    await expect.poll(pending).toEqual([]);
    await page.waitForTimeout(500);
    expect(pending()).toEqual([]);

    expect(failed, `requests that failed:\n${failed.join("\n")}`).toEqual([]);
    const tasks = await listAllTasks(page.request);
    expect(tasks.map((t) => t.title).sort()).toEqual([`${first} from the post office`, second, third].sort());
    for (const task of tasks) await apiDelete(page.request, task.id);
  });
});

/* ---------- accessibility: axe-core on every page, at both sizes ---------- */

type Violation = Awaited<ReturnType<AxeBuilder["analyze"]>>["violations"][number];

/** Serious and critical axe-core violations on the page as it is now. */
async function seriousViolations(page: Page): Promise<Violation[]> {
  const results = await new AxeBuilder({ page }).analyze();
  return results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
}

function describeViolations(where: string, violations: Violation[]): string {
  const lines = violations.flatMap((v) => [
    `${v.id} (${v.impact}): ${v.help}`,
    ...v.nodes.map((n) => `    ${JSON.stringify(n.target)}: ${(n.failureSummary ?? "").replace(/\s*\n\s*/g, " ")}`),
  ]);
  return `${where}: ${violations.length} serious or critical axe-core violation(s)\n${lines.join("\n")}`;
}

async function expectNoSeriousViolations(page: Page, where: string): Promise<void> {
  const violations = await seriousViolations(page);
  expect(violations.map((v) => v.id), describeViolations(where, violations)).toEqual([]);
}

for (const [size, viewport] of [["desktop (1280 × 800)", DESKTOP], ["phone (390 × 844)", PHONE]] as const) {
  test.describe(`on a ${size}`, () => {
    test.use({ viewport });

    test(`The task page, the cache lab and the account pages have no serious or critical accessibility violations, on a ${size}`, async ({
      page,
      browser,
      baseURL,
      unique,
    }) => {
      const open = unique.title("Return the library books");
      await apiCreate(page.request, open);
      await apiCreate(page.request, unique.title("Water the plants"), { done: true });
      await apiCreate(page.request, unique.title(`A long one: ${"write the quarterly report with the figures from every region, ".repeat(3)}`));

      await page.goto("/");
      await expect(row(page, open)).toBeVisible();
      await expectNoSeriousViolations(page, `/ on a ${size}`);
      // With the title counter and an inline editor showing too.
      await newTaskInput(page).fill("x".repeat(450));
      await editButton(page, open).click();
      await expect(page.locator(".title-counter")).toBeVisible();
      await expectNoSeriousViolations(page, `/ with the counter and the editor, on a ${size}`);

      await page.goto("/cache");
      await expect(page.getByRole("heading", { level: 1, name: "Cache lab" })).toBeVisible();
      await expect(page.getByRole("table", { name: /first page of tasks/i }).getByText(open)).toBeVisible();
      await expectNoSeriousViolations(page, `/cache on a ${size}`);

      // The account pages, signed out.
      const signedOut = await browser.newContext({ baseURL, viewport });
      try {
        const anonymous = await signedOut.newPage();
        for (const path of ["/sign-in", "/sign-up"]) {
          await anonymous.goto(path);
          await expect(anonymous.getByRole("heading", { level: 1 })).toBeVisible();
          await expectNoSeriousViolations(anonymous, `${path} on a ${size}`);
        }
      } finally {
        await signedOut.close();
      }
    });
  });
}

/* ---------- the phone layout ---------- */

async function boxOf(locator: Locator): Promise<{ x: number; y: number; width: number; height: number }> {
  const box = await locator.boundingBox();
  expect(box, "bounding box").not.toBeNull();
  return box!;
}

async function expectTarget(locator: Locator, what: string): Promise<void> {
  const box = await boxOf(locator);
  expect(box.width, `${what}: width`).toBeGreaterThanOrEqual(44);
  expect(box.height, `${what}: height`).toBeGreaterThanOrEqual(44);
}

test.describe("on a phone (390 × 844)", () => {
  test.use({ viewport: PHONE, hasTouch: true });

  test("On a phone, Edit and Delete are icons named for their task, every target is 44 px, and titles keep 70% of the row", async ({
    page,
    unique,
  }) => {
    // Short titles (this person's list holds only this story's tasks), a long one and a done one.
    const short = "Buy milk";
    const long = unique.title(`Write the quarterly report ${"with the figures from every region ".repeat(3)}`);
    const done = "Water the plants";
    const created = [await apiCreate(page.request, long), await apiCreate(page.request, short), await apiCreate(page.request, done, { done: true })];

    await page.goto("/");
    await expect(row(page, short)).toBeVisible();
    expect(await page.evaluate(() => document.documentElement.scrollWidth), "page width (no sideways scrolling)").toBeLessThanOrEqual(PHONE.width);

    for (const title of [short, long, done]) {
      // Icon buttons, named for their task.
      const edit = editButton(page, title);
      const remove = deleteButton(page, title);
      for (const [button, word] of [[edit, "Edit"], [remove, "Delete"]] as const) {
        await expect(button).toBeVisible();
        await expect(button.locator(".task-action-icon")).toBeVisible();
        await expect(button.getByText(word, { exact: true })).toBeHidden();
        await expectTarget(button, `${word} "${title}"`);
      }
      // The checkbox's target is 44 px too, and a tap near its edge ticks it.
      await expectTarget(row(page, title).locator(".task-check-target"), `checkbox "${title}"`);
      // The title keeps at least 70% of its row.
      const titleBox = await boxOf(taskTitle(page, title));
      const rowBox = await boxOf(row(page, title));
      expect(titleBox.width / rowBox.width, `share of the row for "${title}" (${titleBox.width} of ${rowBox.width} px)`).toBeGreaterThanOrEqual(0.7);
    }

    // A short title stays on one line.
    const lineHeight = await taskTitle(page, short).evaluate((el) => parseFloat(getComputedStyle(el).lineHeight));
    expect((await boxOf(taskTitle(page, short))).height, "height of a short title").toBeLessThan(lineHeight * 1.5);

    // Every button on the page is a 44 px target (the header's Sign out and the add form's too).
    const buttons = page.getByRole("main").getByRole("button");
    for (let i = 0; i < (await buttons.count()); i++) {
      const button = buttons.nth(i);
      if (await button.isVisible()) await expectTarget(button, `button "${await button.getAttribute("aria-label") ?? await button.textContent()}"`);
    }

    // Tapping the title leaves the task as it is; tapping the checkbox's target near its edge ticks it.
    const box = page.getByRole("checkbox", { name: short, exact: true });
    const titleBox = await boxOf(taskTitle(page, short));
    await page.touchscreen.tap(titleBox.x + titleBox.width / 2, titleBox.y + titleBox.height / 2);
    await expect(box).not.toBeChecked();
    const target = await boxOf(row(page, short).locator(".task-check-target"));
    await page.touchscreen.tap(target.x + 3, target.y + 3);
    await expect(box).toBeChecked();
    await expectAllSaved(page);

    // The toast's buttons are 44 px targets too (the tick above has a toast of its own: this is the delete's).
    await deleteButton(page, short).click();
    const toast = page.getByTestId("toast").filter({ hasText: "Deleted “" });
    await expectTarget(toast.getByRole("button", { name: `Undo delete of “${short}”` }), "Undo");
    await expectTarget(toast.getByRole("button", { name: /^Dismiss notification/ }), "Dismiss notification");

    // Editing on a phone: the field takes the row, and Save and Cancel are 44 px targets under it.
    await editButton(page, done).click();
    const editor = page.getByRole("textbox", { name: `Edit title of "${done}"`, exact: true });
    await expect(editor).toBeFocused();
    await expectTarget(editor, "the inline editor");
    await expectTarget(row(page, done).getByRole("button", { name: "Save" }), "Save");
    await expectTarget(row(page, done).getByRole("button", { name: "Cancel" }), "Cancel");
    await editor.press("Escape");

    for (const task of created) await apiDelete(page.request, task.id);
  });
});
