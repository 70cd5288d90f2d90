import { defineConfig } from "vitest/config";

// The driven-generation tests walk thousands of real matcher steps at the full vocabulary on a shared
// 2-core machine; they take seconds, not the default 5.
export default defineConfig({
  test: { testTimeout: 300_000, hookTimeout: 120_000 },
});
