import "server-only";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { env } from "../env";

const DEV_SECRET_FILE = path.join(process.cwd(), ".data", "auth-secret");

/**
 * The secret that signs session cookies. BETTER_AUTH_SECRET when set. In production it is
 * required: start-up stops with this message. In development a random secret is made once and
 * kept in .data/auth-secret, so `npm run dev` needs no setup and sessions survive restarts.
 */
export function resolveAuthSecret(
  e: Pick<typeof env, "BETTER_AUTH_SECRET" | "NODE_ENV"> = env,
  devSecretFile: string = DEV_SECRET_FILE,
): string {
  if (e.BETTER_AUTH_SECRET) return e.BETTER_AUTH_SECRET;
  if (e.NODE_ENV === "production") {
    throw new Error(
      "Invalid environment configuration:\n  BETTER_AUTH_SECRET: is required in production (at least 32 characters; try: openssl rand -base64 32).",
    );
  }
  try {
    // A path chosen at run time (.data/ in development): nothing for the bundler to trace.
    const kept = readFileSync(/*turbopackIgnore: true*/ devSecretFile, "utf8").trim();
    if (kept.length >= 32) return kept;
  } catch {
    // not made yet
  }
  const secret = randomBytes(32).toString("base64url");
  mkdirSync(path.dirname(devSecretFile), { recursive: true });
  writeFileSync(devSecretFile, `${secret}\n`, { mode: 0o600 });
  return secret;
}
