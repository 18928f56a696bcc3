import { test as base, expect, type APIRequestContext, type Locator, type Page } from "@playwright/test";

/* ---------- accounts ---------- */

export type Account = { name: string; email: string; password: string };

export function newAccount(label = "person"): Account {
  const tag = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  return { name: `${label} ${tag}`, email: `${label}-${tag}@example.test`, password: `pw-${tag}-long` };
}

/**
 * Signs `account` up through better-auth's route. The session cookie lands in `request`'s cookie
 * jar: a page's `page.request` shares it with the page, so the page is signed in too.
 */
export async function signUpVia(request: APIRequestContext, account: Account = newAccount()): Promise<Account> {
  const res = await request.post("/api/auth/sign-up/email", { data: account });
  expect(res.status(), await res.text()).toBe(200);
  return account;
}

/** Makes an API key with the (signed-in) `request` and returns its secret. */
export async function createApiKey(request: APIRequestContext, name = "e2e"): Promise<{ id: string; key: string }> {
  const res = await request.post("/api/keys", { data: { name } });
  expect(res.status(), await res.text()).toBe(201);
  return (await res.json()) as { id: string; key: string };
}

/** A task as GET /api/tasks returns it. */
export type ApiTask = { id: number; title: string; done: boolean; version: number; dueOn: string | null };

/** The two window sizes the stories run at. */
export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

/** Every task the API lists, following nextCursor to the end. */
export async function listAllTasks(request: APIRequestContext): Promise<ApiTask[]> {
  const all: ApiTask[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 1000; page++) {
    const response = await request.get(`/api/tasks?limit=200${cursor ? `&cursor=${cursor}` : ""}`);
    expect(response.status(), await response.text()).toBe(200);
    const body = (await response.json()) as { tasks: ApiTask[]; nextCursor: string | null };
    all.push(...body.tasks);
    cursor = body.nextCursor;
    if (!cursor) break;
  }
  return all;
}

/** The tasks whose title contains `text` (a test's unique tag, or one title). */
export async function tasksContaining(request: APIRequestContext, text: string): Promise<ApiTask[]> {
  return (await listAllTasks(request)).filter((t) => t.title.includes(text));
}

/** The one task with exactly this title, as the API (and so Postgres) has it. */
export async function apiTask(request: APIRequestContext, title: string): Promise<ApiTask | undefined> {
  const matches = (await listAllTasks(request)).filter((t) => t.title === title);
  expect(matches.length, `tasks titled ${JSON.stringify(title)}`).toBeLessThanOrEqual(1);
  return matches[0];
}

export async function apiCreate(request: APIRequestContext, title: string, fields: { done?: boolean; dueOn?: string | null } = {}): Promise<ApiTask> {
  const response = await request.post("/api/tasks", { data: { title, ...fields } });
  expect(response.status(), await response.text()).toBe(201);
  return (await response.json()) as ApiTask;
}

export async function apiDelete(request: APIRequestContext, id: number): Promise<void> {
  const response = await request.delete(`/api/tasks/${id}`);
  expect([204, 404], await response.text()).toContain(response.status());
}

/* ---------- page helpers ---------- */

export function newTaskInput(page: Page): Locator {
  return page.getByRole("textbox", { name: "New task" });
}

export function addButton(page: Page): Locator {
  return page.getByRole("button", { name: "Add", exact: true });
}

/** The list row holding the task with this exact title. */
export function row(page: Page, title: string): Locator {
  return page.getByRole("listitem").filter({ has: page.getByRole("checkbox", { name: title, exact: true }) });
}

/** A row's Edit button: its name says which task (on a phone it shows only an icon). */
export function editButton(page: Page, title: string): Locator {
  return page.getByRole("button", { name: `Edit “${title}”`, exact: true });
}

/** A row's Delete button: its name says which task (on a phone it shows only an icon). */
export function deleteButton(page: Page, title: string): Locator {
  return page.getByRole("button", { name: `Delete “${title}”`, exact: true });
}

/** A row's title: not part of the checkbox; focusable, and double-click or Enter edits it. */
export function taskTitle(page: Page, title: string): Locator {
  return row(page, title).locator(".task-title");
}

/** Alerts on the page itself (Next.js adds an empty role="alert" route announcer outside main). */
export function alerts(page: Page): Locator {
  return page.getByRole("main").getByRole("alert");
}

/** Waits until no row has a write in flight, i.e. the server has confirmed every change. */
export async function expectAllSaved(page: Page): Promise<void> {
  await expect(page.locator('li[aria-busy="true"]')).toHaveCount(0);
}

/** The live region that says how many tasks are open. */
export function openCount(page: Page): Locator {
  return page.getByTestId("open-count");
}

/** Reads the open count as a number ("3 open" → 3; "All done", or empty with no tasks → 0). */
export async function readOpenCount(page: Page): Promise<number> {
  await expect(openCount(page)).toHaveAttribute("role", "status");
  const text = ((await openCount(page).textContent()) ?? "").trim();
  const match = /^(\d+|None) open/.exec(text);
  if (match) return match[1] === "None" ? 0 : Number(match[1]);
  if (text === "All done" || text === "") return 0;
  throw new Error(`Unexpected open count text: ${JSON.stringify(text)}`);
}

/* ---------- the fixture: unique titles, cleaned up afterwards ---------- */

/** Titles unique to one test, all containing `tag`, so the test can find and delete its own data. */
export type Unique = {
  tag: string;
  /** e.g. `Buy milk · e2e-lx3k9-4f2a-1` */
  title: (label: string) => string;
};

export const test = base.extend<{ account: Account; unique: Unique }>({
  // Every story runs as a person of its own, signed up fresh: no test sees another's tasks.
  account: [
    async ({ page }, provide) => {
      await provide(await signUpVia(page.request));
    },
    { auto: true },
  ],
  unique: async ({ page }, provide) => {
    const tag = `e2e-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    let n = 0;
    await provide({ tag, title: (label) => `${label} · ${tag}-${++n}` });
    // Clean up whatever this test created, through the REST API, whether it passed or not.
    for (const task of await tasksContaining(page.request, tag)) await apiDelete(page.request, task.id);
  },
});

export { expect };
