import { test as base, expect } from "@playwright/test";
import { addButton, createApiKey, listAllTasks, newAccount, newTaskInput, row, signUpVia } from "./fixtures";

// Accounts as people meet them: signing up on the page, being sent to sign in, two people side by
// side, signing out in one tab, and API keys made and revoked on the page. These stories make
// their own people (no automatic account), so they start signed out.
const test = base;

test("A newcomer signs up on the page, lands on an empty list of their own, signs out and signs back in", async ({ page }) => {
  const person = newAccount("newcomer");
  await page.goto("/");
  await expect(page).toHaveURL(/\/sign-in\?next=(\/|%2F)$/);
  await expect(page.getByRole("heading", { level: 1, name: "Sign in" })).toBeVisible();
  await page.getByRole("link", { name: "Create an account" }).click();
  await expect(page.getByRole("heading", { level: 1, name: "Create an account" })).toBeVisible();

  // Mistakes are shown beside the field they concern, and the first one gets the focus.
  await page.getByLabel("Name").fill(person.name);
  await page.getByLabel("Email").fill("not an email");
  await page.getByLabel("Password").fill("short");
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page.getByLabel("Email")).toBeFocused();
  await expect(page.getByLabel("Email")).toHaveAttribute("aria-invalid", "true");
  await expect(page.getByLabel("Password")).toHaveAttribute("aria-invalid", "true");

  await page.getByLabel("Email").fill(person.email);
  await page.getByLabel("Password").fill(person.password);
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByText(person.email)).toBeVisible();
  await expect(page.getByRole("main").getByRole("listitem")).toHaveCount(0);

  await newTaskInput(page).fill("My very own task");
  await addButton(page).click();
  await expect(row(page, "My very own task")).toBeVisible();

  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/sign-in/);
  await page.goto("/");
  await expect(page).toHaveURL(/\/sign-in/);

  // A wrong password gets one generic message, whichever part was wrong.
  await page.getByLabel("Email").fill(person.email);
  await page.getByLabel("Password").fill("not-the-password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("main").getByRole("alert")).toContainText(/wrong email or password/i);
  await page.getByLabel("Password").fill(person.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/$/);
  await expect(row(page, "My very own task")).toBeVisible();
});

test("A visitor to the cache lab is sent to sign in, and back to the lab afterwards", async ({ page, playwright, baseURL }) => {
  // The account is made elsewhere, so this page stays signed out.
  const account = newAccount("visitor");
  const elsewhere = await playwright.request.newContext({ baseURL });
  await signUpVia(elsewhere, account);
  await elsewhere.dispose();

  await page.goto("/cache");
  await expect(page).toHaveURL(/\/sign-in\?next=(\/|%2F)cache$/);
  await page.getByLabel("Email").fill(account.email);
  await page.getByLabel("Password").fill(account.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/cache$/);
  await expect(page.getByRole("heading", { level: 1, name: "Cache lab" })).toBeVisible();
});

test("Two people in two browsers each see only their own tasks, and signing out in one tab sends the other tab to sign in at its next action", async ({ browser, baseURL }) => {
  const alice = await browser.newContext({ baseURL });
  const bob = await browser.newContext({ baseURL });
  const aliceAccount = await signUpVia(alice.request, newAccount("alice"));
  await signUpVia(bob.request, newAccount("bob"));
  const alicePage = await alice.newPage();
  const bobPage = await bob.newPage();
  for (const [page, title] of [
    [alicePage, "Alice's secret plan"],
    [bobPage, "Bob's shopping list"],
  ] as const) {
    await page.goto("/");
    await newTaskInput(page).fill(title);
    await addButton(page).click();
    await expect(row(page, title)).toBeVisible();
  }
  for (const page of [alicePage, bobPage]) await page.reload();
  await expect(row(alicePage, "Alice's secret plan")).toBeVisible();
  await expect(alicePage.getByText("Bob's shopping list")).toHaveCount(0);
  await expect(row(bobPage, "Bob's shopping list")).toBeVisible();
  await expect(bobPage.getByText("Alice's secret plan")).toHaveCount(0);

  // Bob can't reach Alice's task by its id either: it answers as a missing one.
  const alicesTasks = (await (await alice.request.get("/api/tasks")).json()) as { tasks: Array<{ id: number }> };
  const id = alicesTasks.tasks[0]!.id;
  const peek = await bob.request.get(`/api/tasks/${id}`);
  expect(peek.status()).toBe(404);
  expect(await peek.json()).toEqual({ error: { code: "not_found", message: `Task ${id} does not exist.` } });
  expect((await bob.request.delete(`/api/tasks/${id}`)).status()).toBe(404);

  // Alice has a second tab open; she signs out in the first.
  const aliceTab2 = await alice.newPage();
  await aliceTab2.goto("/");
  await alicePage.getByRole("button", { name: "Sign out" }).click();
  await expect(alicePage).toHaveURL(/\/sign-in/);
  // The second tab's next action finds the session gone and sends her to sign in.
  await newTaskInput(aliceTab2).fill("written after signing out");
  await addButton(aliceTab2).click();
  await expect(aliceTab2).toHaveURL(/\/sign-in\?next=(\/|%2F)$/);
  // Nothing was written after the sign-out: signed back in, she finds her list without it.
  expect((await alice.request.get("/api/tasks")).status()).toBe(401);
  const signIn = await alice.request.post("/api/auth/sign-in/email", { data: { email: aliceAccount.email, password: aliceAccount.password } });
  expect(signIn.status(), await signIn.text()).toBe(200);
  const titles = (await listAllTasks(alice.request)).map((t) => t.title);
  expect(titles).toContain("Alice's secret plan");
  expect(titles).not.toContain("written after signing out");
  await Promise.all([alice.close(), bob.close()]);
});

test("A person makes an API key on the page for a program, and revoking it stops the program at once", async ({ page, playwright, baseURL }) => {
  await signUpVia(page.request, newAccount("keyholder"));
  await page.goto("/");
  await page.getByText("API keys for programs").click();
  await page.getByLabel("Key name").fill("nightly backup");
  await page.getByRole("button", { name: "Create key" }).click();
  const secret = await page.getByRole("textbox", { name: /New key/ }).inputValue();
  expect(secret).toMatch(/^wtk_/);
  await page.getByRole("button", { name: "Done", exact: true }).click();
  await expect(page.getByRole("textbox", { name: /New key/ })).toHaveCount(0);

  const program = await playwright.request.newContext({ baseURL, extraHTTPHeaders: { Authorization: `Bearer ${secret}` } });
  const made = await program.post("/api/tasks", { data: { title: "made by the backup program" } });
  expect(made.status()).toBe(201);
  await page.reload();
  await expect(row(page, "made by the backup program")).toBeVisible();

  await page.getByText("API keys for programs").click();
  await page.getByRole("button", { name: 'Revoke key "nightly backup"' }).click();
  await expect(page.getByRole("button", { name: 'Revoke key "nightly backup"' })).toHaveCount(0);
  expect((await program.get("/api/tasks")).status()).toBe(401);
  await program.dispose();
  // Keys made through the API show up on the page too.
  await createApiKey(page.request, "from the API");
  await page.reload();
  await page.getByText("API keys for programs").click();
  await expect(page.getByRole("button", { name: 'Revoke key "from the API"' })).toBeVisible();
});

test("Every page and API answer carries the browser protections", async ({ page, request }) => {
  const res = await page.goto("/sign-in");
  const headers = res!.headers();
  expect(headers["content-security-policy"]).toMatch(/script-src 'self' 'nonce-[A-Za-z0-9+/=]+' 'strict-dynamic'/);
  expect(headers["content-security-policy"]).not.toContain("unsafe-eval");
  expect(headers["content-security-policy"]).toContain("frame-ancestors 'none'");
  expect(headers["x-content-type-options"]).toBe("nosniff");
  expect(headers["referrer-policy"]).toBe("strict-origin-when-cross-origin");
  // The page still works under its policy: the form is interactive (hydrated).
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByLabel("Email")).toHaveAttribute("aria-invalid", "true");
  const api = await request.get("/api/health");
  expect(api.headers()["content-security-policy"]).toBe("default-src 'none'; frame-ancestors 'none'");
  expect(api.headers()["x-content-type-options"]).toBe("nosniff");
});
