import { defineConfig } from "vitest/config";

// Many tests here start real processes (workers, Redis, gRPC servers) and run the real engine: on a
// shared 2-core machine under load (TEST is also run beside stress-ng) that takes seconds, not the
// default 5. Tests that are about time assert their own bounds.
export default defineConfig({
  test: { testTimeout: 60_000, hookTimeout: 120_000 },
});
