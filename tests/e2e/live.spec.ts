import type { Page } from "@playwright/test";
import { addButton, apiCreate, deleteButton, expect, expectAllSaved, newAccount, newTaskInput, openCount, row, signUpVia, test } from "./fixtures";

// Live updates (issue 11, item 4): a person with the page open in two places sees a change made in
// one appear in the other without reloading, and never sees anyone else's. The app server here
// runs on Redis, so the change travels: server action → Postgres → cache → PUBLISH → the stream
// the other page holds open (GET /api/tasks/events).

/** Resolves once the page's event stream has said `ready` (it is subscribed: nothing after this is missed). */
async function openListening(page: Page): Promise<void> {
  const ready = page.waitForResponse((res) => res.url().endsWith("/api/tasks/events") && res.status() === 200);
  await page.goto("/");
  await ready;
  // The stream's first event triggers a reread; let it settle so the page is idle.
  await expect(page.getByRole("heading", { level: 1, name: "Tasks" })).toBeVisible();
}

test("A change made in one tab appears in the other without a reload: add, tick, rename and delete", async ({ page, unique }) => {
  const other = await page.context().newPage();
  await openListening(page);
  await openListening(other);

  const title = unique.title("Water the tomatoes");
  await newTaskInput(page).fill(title);
  await addButton(page).click();
  await expectAllSaved(page);
  await expect(row(other, title)).toBeVisible();
  await expect(openCount(other)).toHaveText(/^1 open\b/);

  // Ticked in the second tab: the first shows it done, and its counts follow.
  await other.getByRole("checkbox", { name: title, exact: true }).check();
  await expectAllSaved(other);
  await expect(page.getByRole("checkbox", { name: title, exact: true })).toBeChecked();
  await expect(openCount(page)).toHaveText(/^0 open · 1 done\b|^All done/);

  // Renamed by a program with the same person's credentials (not a page at all).
  const [task] = ((await (await page.request.get("/api/tasks")).json()) as { tasks: Array<{ id: number; title: string }> }).tasks.filter((t) => t.title === title);
  const renamed = unique.title("Water the tomatoes and the basil");
  expect((await page.request.patch(`/api/tasks/${task!.id}`, { data: { title: renamed } })).status()).toBe(200);
  for (const p of [page, other]) await expect(row(p, renamed)).toBeVisible();

  // Deleted in the first tab: gone from the second.
  await deleteButton(page, renamed).click();
  await expectAllSaved(page);
  await expect(row(other, renamed)).toHaveCount(0);
  await other.close();
});

test("Another person's changes never reach this page, while this person's own still do", async ({ page, browser, baseURL, unique }) => {
  await openListening(page);
  const stranger = await browser.newContext({ baseURL });
  await signUpVia(stranger.request, newAccount("stranger"));
  const theirs = unique.title("Stranger's secret");
  const made = await stranger.request.post("/api/tasks", { data: { title: theirs } });
  expect(made.status()).toBe(201);
  // A change of this person's own, made after the stranger's: once it shows, the stranger's would have too.
  const marker = await apiCreate(page.request, unique.title("My own marker"));
  await expect(row(page, marker.title)).toBeVisible();
  await expect(page.getByText(theirs)).toHaveCount(0);
  await stranger.close();
});

test("A page whose stream can't connect picks up what changed meanwhile once it does", async ({ page, unique }) => {
  // The page's event stream is refused (as a flaky network would), and a task is added meanwhile.
  await page.route("**/api/tasks/events", (route) => route.abort("connectionreset"));
  const refused = page.waitForRequest((req) => req.url().endsWith("/api/tasks/events"));
  await page.goto("/");
  await refused;
  const missed = await apiCreate(page.request, unique.title("Made while the stream was down"));
  // Without a stream nothing tells the page (this is what the reconnect below fixes).
  await page.waitForTimeout(1_500);
  await expect(row(page, missed.title)).toHaveCount(0);
  // The stream comes back: its `ready` makes the page reread, so the change shows without a reload.
  await page.unroute("**/api/tasks/events");
  await expect(row(page, missed.title)).toBeVisible({ timeout: 15_000 });
});
