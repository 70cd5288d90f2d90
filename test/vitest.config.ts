import { defineConfig } from "vitest/config";

// End-to-end tests start real processes (redis-server, the services, UP itself): generous timeouts,
// one file at a time so they never fight over the 2 CPU cores.
export default defineConfig({
  test: {
    include: ["e2e/**/*.test.ts"],
    testTimeout: 180_000,
    hookTimeout: 180_000,
    fileParallelism: false,
  },
});
