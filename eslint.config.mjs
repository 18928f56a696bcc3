import { defineConfig, globalIgnores } from "eslint/config";
import nextVitals from "eslint-config-next/core-web-vitals";
import nextTs from "eslint-config-next/typescript";
import drizzle from "eslint-plugin-drizzle";
import tseslint from "typescript-eslint";

// Type-aware rules need the TypeScript program, so they run on TypeScript files only (the .mjs
// scripts and configs get the untyped rules above them).
const TS_FILES = ["**/*.ts", "**/*.tsx", "**/*.mts", "**/*.cts"];

export default defineConfig([
  ...nextVitals,
  ...nextTs,
  globalIgnores([".next/**", "out/**", "node_modules/**", ".data/**", ".data-*/**", "test-results/**", "playwright-report/**", "bench/results/**", "next-env.d.ts"]),
  ...tseslint.configs.recommendedTypeChecked.map((config) => ({ ...config, files: TS_FILES })),
  {
    files: TS_FILES,
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // Off: an `async` function without `await` is how we implement Promise-returning interfaces (the memory driver, test doubles), so a throw is a rejection.
      "@typescript-eslint/require-await": "off",
    },
  },
  {
    files: ["tests/**"],
    rules: {
      // Off in tests only: Vitest's asymmetric matchers (expect.any, expect.stringMatching, expect.objectContaining) are typed `any`.
      "@typescript-eslint/no-unsafe-assignment": "off",
    },
  },
  {
    files: TS_FILES,
    plugins: { drizzle },
    rules: {
      // The names our Drizzle handles go by: `db` (a Database's handle, or a parameter) and `tx` (a transaction).
      "drizzle/enforce-delete-with-where": ["error", { drizzleObjectName: ["db", "tx"] }],
      "drizzle/enforce-update-with-where": ["error", { drizzleObjectName: ["db", "tx"] }],
    },
  },
  {
    rules: {
      // Only lib/env.ts reads the environment (scripts and test tooling are exempt below).
      "no-restricted-properties": ["error", { object: "process", property: "env", message: "Read configuration through lib/env.ts." }],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  {
    files: ["lib/env.ts", "scripts/**", "tests/**", "playwright.config.ts", "vitest.config.ts", "bench/**", "*.config.*", "instrumentation.ts"],
    rules: { "no-restricted-properties": "off" },
  },
]);
