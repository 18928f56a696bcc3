import type { NextConfig } from "next";
// Importing the env module here makes a bad variable fail `next build` and `next dev` at once,
// with the variable named, instead of on the first request.
import "./lib/env";

const nextConfig: NextConfig = {
  // PGlite ships WebAssembly and data files that must be loaded from node_modules, not bundled.
  serverExternalPackages: ["@electric-sql/pglite", "ioredis", "postgres", "pino", "prom-client"],
  poweredByHeader: false,
};

export default nextConfig;
