/** Polls `check` every `everyMs` until it holds; throws naming `what` once `limitMs` have passed. */
export async function until(check: () => Promise<boolean> | boolean, what: string, limitMs = 15_000, everyMs = 25): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
