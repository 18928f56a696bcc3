import AxeBuilder from "@axe-core/playwright";
import type { Page } from "@playwright/test";
import {
  apiCreate,
  apiTask,
  deleteButton,
  DESKTOP,
  expect,
  expectAllSaved,
  newTaskInput,
  openCount,
  PHONE,
  row,
  test,
} from "./fixtures";

// Issue 10, item 2: the views (All, Active, Completed, Due) as tabs with their counts, the count
// line, and counts that follow every write, at a desktop's and a phone's size.


function tab(page: Page, name: string) {
  return page.getByRole("tablist", { name: "Views" }).getByRole("tab", { name, exact: true });
}

/** The titles of the rows shown, top to bottom. */
async function shownTitles(page: Page): Promise<string[]> {
  return page.getByRole("tabpanel").getByRole("checkbox").evaluateAll((boxes) => boxes.map((b) => b.getAttribute("aria-label") ?? ""));
}

/** The browser's local date, `days` from today. */
async function localDay(page: Page, days = 0): Promise<string> {
  return page.evaluate((n) => {
    const d = new Date();
    d.setDate(d.getDate() + n);
    return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
  }, days);
}

for (const [size, viewport] of [["desktop (1280 × 800)", DESKTOP], ["phone (390 × 844)", PHONE]] as const) {
  test.describe(`on a ${size}`, () => {
    test.use({ viewport });

    test(`Tabs with counts switch the view, and the counts follow every write, on a ${size}`, async ({ page, unique }) => {
      const pay = unique.title("Pay the rent");
      const call = unique.title("Call grandma");
      const plants = unique.title("Water the plants");
      const bins = unique.title("Put the bins out");
      await apiCreate(page.request, pay);
      await apiCreate(page.request, call);
      await apiCreate(page.request, plants, { done: true });

      await page.goto("/");
      await expect(tab(page, "All 3")).toHaveAttribute("aria-selected", "true");
      await expect(tab(page, "Active 2")).toHaveAttribute("aria-selected", "false");
      await expect(tab(page, "Completed 1")).toBeVisible();
      await expect(tab(page, "Due")).toBeVisible();
      await expect(openCount(page)).toHaveText("2 open · 1 done · 3 tasks");
      expect(await shownTitles(page)).toEqual([plants, call, pay]);

      // Active: the open tasks only.
      await tab(page, "Active 2").click();
      await expect(tab(page, "Active 2")).toHaveAttribute("aria-selected", "true");
      await expect(page.getByRole("tabpanel", { name: "Active 2" })).toBeVisible();
      await expect.poll(() => shownTitles(page)).toEqual([call, pay]);

      // Completing one in Active: ticked at once, gone from Active once the server has it; the counts move.
      const callBox = page.getByRole("checkbox", { name: call, exact: true });
      await callBox.click();
      await expect(row(page, call)).toHaveCount(0);
      await expect(openCount(page)).toHaveText("1 open · 2 done · 3 tasks");
      await expect(tab(page, "Active 1")).toBeVisible();
      await expect(tab(page, "Completed 2")).toBeVisible();
      expect(await apiTask(page.request, call)).toMatchObject({ done: true });
      // Focus was on the box that left: it moves to the row now in its place, not off the page.
      await expect(page.getByRole("checkbox", { name: pay, exact: true })).toBeFocused();

      // Completed: the done ones, newest first.
      await tab(page, "Completed 2").click();
      await expect.poll(() => shownTitles(page)).toEqual([plants, call]);

      // Adding from Completed: the task isn't listed here, so a toast says where it went; the counts move.
      await newTaskInput(page).fill(bins);
      await newTaskInput(page).press("Enter");
      await expect(page.getByTestId("toast").filter({ hasText: `Added “${bins}” to Active` })).toBeVisible();
      await expect(openCount(page)).toHaveText("2 open · 2 done · 4 tasks");
      expect(await shownTitles(page)).toEqual([plants, call]);

      // Deleting in Completed.
      await deleteButton(page, plants).click();
      await expect(row(page, plants)).toHaveCount(0);
      await expect(openCount(page)).toHaveText("2 open · 1 done · 3 tasks");
      await expect(tab(page, "Completed 1")).toBeVisible();
      await expect(tab(page, "All 3")).toBeVisible();

      // All again, read afresh: every live task.
      await tab(page, "All 3").click();
      await expect.poll(() => shownTitles(page)).toEqual([bins, call, pay]);
      await expectAllSaved(page);

      // After a reload the counts are the server's, and they agree.
      await page.reload();
      await expect(openCount(page)).toHaveText("2 open · 1 done · 3 tasks");
      await expect(tab(page, "Active 2")).toBeVisible();
    });

    test(`The Due view lists every live task by due date, undated last, on a ${size}`, async ({ page, unique }) => {
      await page.goto("/");
      const [later, soon, none, doneSoonest] = [unique.title("Renew the passport"), unique.title("Book the dentist"), unique.title("Read a book"), unique.title("File the taxes")];
      await apiCreate(page.request, later, { dueOn: await localDay(page, 20) });
      await apiCreate(page.request, none);
      await apiCreate(page.request, soon, { dueOn: await localDay(page, 2) });
      await apiCreate(page.request, doneSoonest, { done: true, dueOn: await localDay(page, 1) });

      await page.reload();
      expect(await shownTitles(page)).toEqual([doneSoonest, soon, none, later]);
      await tab(page, "Due").click();
      await expect(tab(page, "Due")).toHaveAttribute("aria-selected", "true");
      await expect.poll(() => shownTitles(page)).toEqual([doneSoonest, soon, later, none]);
      await expect(openCount(page)).toHaveText("3 open · 1 done · 4 tasks");
    });

    test(`Each view has no serious or critical accessibility violations, on a ${size}`, async ({ page, unique }) => {
      await page.goto("/");
      await apiCreate(page.request, unique.title("Return the library books"));
      await apiCreate(page.request, unique.title("Water the plants"), { done: true, dueOn: await localDay(page, -3) });
      await apiCreate(page.request, unique.title("Pay the gas bill"), { dueOn: await localDay(page, -1) });
      const today = unique.title("Buy a birthday card");
      await apiCreate(page.request, today, { dueOn: await localDay(page, 0) });
      await page.reload();
      await expect(row(page, today).getByText("Today", { exact: true })).toBeVisible();

      for (const name of ["All 4", "Active 3", "Completed 1", "Due"]) {
        await tab(page, name).click();
        await expect(tab(page, name)).toHaveAttribute("aria-selected", "true");
        await expect(page.getByRole("tabpanel")).not.toHaveAttribute("aria-busy", "true");
        await expect(page.getByRole("tabpanel").getByRole("listitem").first()).toBeVisible();
        await expectNoSeriousViolations(page, `the ${name} view on a ${size}`);
      }

      // With toasts showing (a tick's and a delete's) and the editor with its date field open.
      await page.getByRole("checkbox", { name: today, exact: true }).click();
      await expect(page.getByTestId("toast").filter({ hasText: "Completed “" })).toBeVisible();
      await page.getByRole("button", { name: `Edit “${today}”`, exact: true }).click();
      await expect(page.getByRole("textbox", { name: `Edit title of "${today}"` })).toBeFocused();
      await expectNoSeriousViolations(page, `the Due view with a toast and the editor on a ${size}`);

      // And the empty views.
      await page.getByRole("button", { name: `Cancel`, exact: true }).click();
      await page.getByRole("button", { name: "Clear completed" }).click();
      await tab(page, "Completed 0").click();
      await expect(page.getByText("No completed tasks yet.")).toBeVisible();
      await expectNoSeriousViolations(page, `the empty Completed view on a ${size}`);
    });
  });
}

test.describe("on a desktop (1280 × 800), by keyboard", () => {
  test.use({ viewport: DESKTOP });

  test("The views are one tab stop; the arrow keys, Home and End move between them and show each", async ({ page, unique }) => {
    const open = unique.title("Plan the sprint");
    const done = unique.title("Send the invoice");
    await apiCreate(page.request, open);
    await apiCreate(page.request, done, { done: true });

    await page.goto("/");
    const all = tab(page, "All 2");
    await expect(all).toHaveAttribute("tabindex", "0");
    await expect(tab(page, "Active 1")).toHaveAttribute("tabindex", "-1");
    await all.focus();
    await page.keyboard.press("ArrowRight");
    await expect(tab(page, "Active 1")).toBeFocused();
    await expect(tab(page, "Active 1")).toHaveAttribute("aria-selected", "true");
    await expect.poll(() => shownTitles(page)).toEqual([open]);
    await page.keyboard.press("End");
    await expect(tab(page, "Due")).toBeFocused();
    await page.keyboard.press("ArrowRight");
    await expect(all).toBeFocused();
    await page.keyboard.press("ArrowLeft");
    await page.keyboard.press("ArrowLeft");
    await expect(tab(page, "Completed 1")).toBeFocused();
    await expect.poll(() => shownTitles(page)).toEqual([done]);

    // Tab leaves the tablist for what follows it, the list's own controls; Shift+Tab comes back to the selected tab.
    await page.keyboard.press("Tab");
    await expect(page.getByRole("button", { name: "Mark all done", exact: true })).toBeFocused();
    await page.keyboard.press("Shift+Tab");
    await expect(tab(page, "Completed 1")).toBeFocused();
  });
});

/* ---------- axe-core, as tests/e2e/page-fixes.spec.ts runs it ---------- */

type Violation = Awaited<ReturnType<AxeBuilder["analyze"]>>["violations"][number];

async function expectNoSeriousViolations(page: Page, where: string): Promise<void> {
  const results = await new AxeBuilder({ page }).analyze();
  const violations: Violation[] = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  const lines = violations.flatMap((v) => [
    `${v.id} (${v.impact}): ${v.help}`,
    ...v.nodes.map((n) => `    ${JSON.stringify(n.target)}: ${(n.failureSummary ?? "").replace(/\s*\n\s*/g, " ")}`),
  ]);
  expect(violations.map((v) => v.id), `${where}: ${violations.length} serious or critical axe-core violation(s)\n${lines.join("\n")}`).toEqual([]);
}
