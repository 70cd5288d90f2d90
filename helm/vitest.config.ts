import { defineConfig } from "vitest/config";

// helm runs as a child process per render: a few seconds per file on 2 cores.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
