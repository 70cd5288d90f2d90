import { defineConfig } from "vitest/config";

// Native tests share two cores and large buffers: one file at a time.
export default defineConfig({
  test: { fileParallelism: false, testTimeout: 120_000, hookTimeout: 120_000 },
});
