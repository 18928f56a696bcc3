import { defineConfig, globalIgnores } from "eslint/config";
import nextVitals from "eslint-config-next/core-web-vitals";
import nextTs from "eslint-config-next/typescript";

export default defineConfig([
  ...nextVitals,
  ...nextTs,
  globalIgnores([".next/**", "out/**", "node_modules/**", ".data/**", ".data-*/**", "test-results/**", "playwright-report/**", "bench/results/**", "next-env.d.ts"]),
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
