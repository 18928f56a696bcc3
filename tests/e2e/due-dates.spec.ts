import type { APIRequestContext, Locator, Page } from "@playwright/test";
import {
  addButton,
  apiCreate,
  apiTask,
  DESKTOP,
  editButton,
  expect,
  expectAllSaved,
  newTaskInput,
  PHONE,
  row,
  taskTitle,
  test,
} from "./fixtures";

// Issue 10, item 3: due dates. The add form's optional date, each row's date (a <time>), "Overdue"
// and "Today" said in words, and the editor changing or clearing a date. Dates are relative to the
// browser's own today.

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

async function dueOnInApi(request: APIRequestContext, title: string): Promise<string | null | undefined> {
  return ((await apiTask(request, title)))?.dueOn;
}

/** The browser's local date, `days` from today. */
async function localDay(page: Page, days = 0): Promise<string> {
  return page.evaluate((n) => {
    const d = new Date();
    d.setDate(d.getDate() + n);
    return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
  }, days);
}

/** What a row says for a date: "Due 3 Dec", with the year when it isn't this year's. */
function shown(date: string, today: string): string {
  const [y, m, d] = date.split("-").map(Number) as [number, number, number];
  return `Due ${d} ${MONTHS[m - 1]}${date.slice(0, 4) === today.slice(0, 4) ? "" : ` ${y}`}`;
}

function dueOf(page: Page, title: string): Locator {
  return row(page, title).getByTestId("task-due");
}

async function boxOf(locator: Locator): Promise<{ x: number; y: number; width: number; height: number }> {
  const box = await locator.boundingBox();
  expect(box, "bounding box").not.toBeNull();
  return box!;
}

test.describe("on a desktop (1280 × 800)", () => {
  test.use({ viewport: DESKTOP });

  test("A person adds a task with a due date, moves the date, then clears it", async ({ page, unique }) => {
    const title = unique.title("Renew the car insurance");
    await page.goto("/");
    const today = await localDay(page);
    const inThree = await localDay(page, 3);
    const inTen = await localDay(page, 10);

    // The add form's date is optional and labelled.
    const due = page.getByLabel("Due date", { exact: true });
    await expect(due).toHaveAttribute("type", "date");
    await expect(due).toHaveValue("");
    await newTaskInput(page).fill(title);
    await due.fill(inThree);
    await addButton(page).click();
    // The form is ready for the next task: both fields empty.
    await expect(newTaskInput(page)).toHaveValue("");
    await expect(due).toHaveValue("");

    const time = dueOf(page, title).locator("time");
    await expect(time).toHaveAttribute("datetime", inThree);
    await expect(time).toHaveText(shown(inThree, today));
    await expect(dueOf(page, title)).not.toContainText(/Overdue|Today/);
    await expectAllSaved(page);
    expect(await dueOnInApi(page.request, title)).toBe(inThree);

    // Edit: the editor has the date too; Enter saves it (the title unchanged).
    await editButton(page, title).click();
    const editorDue = page.getByLabel(`Due date of "${title}"`, { exact: true });
    await expect(editorDue).toHaveValue(inThree);
    await editorDue.fill(inTen);
    await editorDue.press("Enter");
    await expect(editButton(page, title)).toBeFocused();
    await expect(time).toHaveAttribute("datetime", inTen);
    await expect(time).toHaveText(shown(inTen, today));
    await expectAllSaved(page);
    expect(await dueOnInApi(page.request, title)).toBe(inTen);
    expect(await apiTask(page.request, title)).toMatchObject({ title });

    // Edit again and clear the date with the editor's Clear button; Save.
    await taskTitle(page, title).dblclick();
    await row(page, title).getByRole("button", { name: `Clear the due date of "${title}"` }).click();
    await expect(editorDue).toHaveValue("");
    await expect(editorDue).toBeFocused();
    await row(page, title).getByRole("button", { name: "Save" }).click();
    await expect(dueOf(page, title)).toHaveCount(0);
    await expectAllSaved(page);
    expect(await dueOnInApi(page.request, title)).toBeNull();

    await page.reload();
    await expect(row(page, title)).toBeVisible();
    await expect(dueOf(page, title)).toHaveCount(0);
  });

  test("Overdue tasks and tasks due today say so in words; a done task is never overdue", async ({ page, unique }) => {
    await page.goto("/");
    const today = await localDay(page);
    const late = unique.title("Return the library books");
    const now = unique.title("Buy a birthday card");
    const soon = unique.title("Book the dentist");
    const doneLate = unique.title("Pay the gas bill");
    await apiCreate(page.request, late, { dueOn: await localDay(page, -2) });
    await apiCreate(page.request, now, { dueOn: today });
    await apiCreate(page.request, soon, { dueOn: await localDay(page, 1) });
    await apiCreate(page.request, doneLate, { dueOn: await localDay(page, -5), done: true });
    await page.reload();

    await expect(dueOf(page, late)).toContainText("Overdue");
    await expect(dueOf(page, late).locator("time")).toHaveText(shown(await localDay(page, -2), today));
    await expect(dueOf(page, now)).toContainText("Today");
    await expect(dueOf(page, now)).not.toContainText("Overdue");
    await expect(dueOf(page, soon)).not.toContainText(/Overdue|Today/);
    await expect(dueOf(page, doneLate)).not.toContainText(/Overdue|Today/);
    await expect(dueOf(page, doneLate).locator("time")).toHaveAttribute("datetime", await localDay(page, -5));

    // Colour is only a second cue: the badge's text is dark enough on its own background.
    const badge = row(page, late).getByText("Overdue", { exact: true });
    const [fg, bg] = await badge.evaluate((el) => [getComputedStyle(el).color, getComputedStyle(el).backgroundColor]);
    expect(contrast(fg, bg), `"Overdue" ${fg} on ${bg}`).toBeGreaterThanOrEqual(4.5);
    const todayBadge = row(page, now).getByText("Today", { exact: true });
    const [fg2, bg2] = await todayBadge.evaluate((el) => [getComputedStyle(el).color, getComputedStyle(el).backgroundColor]);
    expect(contrast(fg2, bg2), `"Today" ${fg2} on ${bg2}`).toBeGreaterThanOrEqual(4.5);

    // Ticking the overdue task takes its badge away; unticking brings it back.
    const lateBox = page.getByRole("checkbox", { name: late, exact: true });
    await lateBox.click();
    await expect(dueOf(page, late)).not.toContainText("Overdue");
    await lateBox.click();
    await expect(dueOf(page, late)).toContainText("Overdue");
    await expectAllSaved(page);
  });

  test("A date that isn't a whole date is not sent; the field says what is wrong", async ({ page, unique }) => {
    const title = unique.title("Plan the trip");
    await page.goto("/");
    const due = page.getByLabel("Due date", { exact: true });
    await newTaskInput(page).fill(title);
    // Only the day typed: the field holds an unfinished date.
    await due.focus();
    await page.keyboard.type("12");
    await addButton(page).click();
    await expect(due).toHaveAttribute("aria-invalid", "true");
    await expect(due).toHaveAccessibleDescription("Enter a whole date, or clear the field.");
    await expect(row(page, title)).toHaveCount(0);
    expect(await apiTask(page.request, title)).toBeUndefined();
  });
});

test.describe("on a phone (390 × 844)", () => {
  test.use({ viewport: PHONE, hasTouch: true });

  test("On a phone the date sits under the title, the title keeps 70% of the row, and the editor's date field is a 44 px target", async ({
    page,
    unique,
  }) => {
    await page.goto("/");
    const late = unique.title("Return the library books");
    await apiCreate(page.request, late, { dueOn: await localDay(page, -1) });
    await page.reload();
    expect(await page.evaluate(() => document.documentElement.scrollWidth), "page width").toBeLessThanOrEqual(PHONE.width);

    const title = await boxOf(taskTitle(page, late));
    const due = await boxOf(dueOf(page, late));
    const line = await boxOf(row(page, late));
    expect(title.width / line.width, "share of the row for the title").toBeGreaterThanOrEqual(0.7);
    expect(due.y, "the date is under the title").toBeGreaterThanOrEqual(title.y + title.height - 1);
    await expect(dueOf(page, late)).toContainText("Overdue");

    const addDue = await boxOf(page.getByLabel("Due date", { exact: true }));
    expect(addDue.height, "the add form's date field").toBeGreaterThanOrEqual(44);

    await editButton(page, late).click();
    const editorDue = page.getByLabel(`Due date of "${late}"`, { exact: true });
    const box = await boxOf(editorDue);
    expect(box.height, "the editor's date field").toBeGreaterThanOrEqual(44);
    const clear = await boxOf(row(page, late).getByRole("button", { name: `Clear the due date of "${late}"` }));
    expect(clear.height).toBeGreaterThanOrEqual(44);
    expect(clear.width).toBeGreaterThanOrEqual(44);
    await page.keyboard.press("Escape");
  });
});

/* ---------- WCAG contrast of two computed colours ---------- */

function rgb(css: string): [number, number, number] {
  const m = /rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)/.exec(css);
  expect(m, `a colour: ${css}`).not.toBeNull();
  return [Number(m![1]), Number(m![2]), Number(m![3])];
}

function luminance([r, g, b]: [number, number, number]): number {
  const [R, G, B] = [r, g, b].map((v) => {
    const c = v / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  }) as [number, number, number];
  return 0.2126 * R + 0.7152 * G + 0.0722 * B;
}

function contrast(a: string, b: string): number {
  const [x, y] = [luminance(rgb(a)), luminance(rgb(b))].sort((p, q) => q - p) as [number, number];
  return (x + 0.05) / (y + 0.05);
}
