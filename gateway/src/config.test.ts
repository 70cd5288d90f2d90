import { ConfigError } from "@expertmesh/common/config";
import { describe, expect, it } from "vitest";
import { loadGatewayConfig } from "./config.ts";

describe("gateway config: constrained decoding", () => {
  it("guards Harmony and sets no reasoning budget by default", () => {
    const c = loadGatewayConfig({});
    expect(c.harmony_guard).toBe(true);
    expect(c.reasoning_budget).toEqual({ low: 0, medium: 0, high: 0 });
  });

  it("reads GATEWAY_HARMONY_GUARD and GATEWAY_REASONING_BUDGET_* from the environment", () => {
    const c = loadGatewayConfig({
      GATEWAY_HARMONY_GUARD: "false",
      GATEWAY_REASONING_BUDGET_LOW: "256",
      GATEWAY_REASONING_BUDGET_MEDIUM: "1024",
      GATEWAY_REASONING_BUDGET_HIGH: "3072",
    });
    expect(c.harmony_guard).toBe(false);
    expect(c.reasoning_budget).toEqual({ low: 256, medium: 1024, high: 3072 });
  });

  it("refuses a budget that leaves a request without max_tokens no room, and one that is not a count", () => {
    const problems = (env: NodeJS.ProcessEnv) => {
      try {
        loadGatewayConfig(env);
      } catch (err) {
        if (err instanceof ConfigError) return err.issues;
        throw err;
      }
      return [];
    };
    expect(problems({ GATEWAY_DEFAULT_MAX_TOKENS: "2048", GATEWAY_REASONING_BUDGET_HIGH: "2048" })).toEqual([
      "reasoning_budget.high (GATEWAY_REASONING_BUDGET_HIGH): reasoning_budget.high (2048) must be below default_max_tokens (2048), or 0 for no budget",
    ]);
    expect(problems({ GATEWAY_REASONING_BUDGET_LOW: "-1" })).toHaveLength(1);
    expect(problems({ GATEWAY_HARMONY_GUARD: "maybe" })[0]).toContain("harmony_guard (GATEWAY_HARMONY_GUARD)");
  });
});

describe("gateway config: the pages", () => {
  it("serves them by default and reads GATEWAY_UI and the dashboard's sampling from the environment", () => {
    expect(loadGatewayConfig({}).ui).toEqual({ enabled: true, dashboard_sample_ms: 2000, dashboard_history_ms: 600_000 });
    const c = loadGatewayConfig({ GATEWAY_UI: "false", GATEWAY_DASHBOARD_SAMPLE_MS: "500", GATEWAY_DASHBOARD_HISTORY_MS: "60000" });
    expect(c.ui).toEqual({ enabled: false, dashboard_sample_ms: 500, dashboard_history_ms: 60_000 });
    expect(() => loadGatewayConfig({ GATEWAY_DASHBOARD_SAMPLE_MS: "10" })).toThrow(ConfigError);
  });
});

describe("gateway config: background responses and the build commit", () => {
  it("defaults, and reads GATEWAY_BACKGROUND_* and EXPERTMESH_GIT_COMMIT from the environment", () => {
    expect(loadGatewayConfig({}).background).toEqual({ concurrency: 16, lock_duration_ms: 30_000, max_stalled_count: 3 });
    expect(loadGatewayConfig({}).build_commit).toBe("");
    const c = loadGatewayConfig({
      GATEWAY_BACKGROUND_CONCURRENCY: "4",
      GATEWAY_BACKGROUND_LOCK_DURATION_MS: "5000",
      GATEWAY_BACKGROUND_MAX_STALLED_COUNT: "1",
      EXPERTMESH_GIT_COMMIT: "0123abc",
    });
    expect(c.background).toEqual({ concurrency: 4, lock_duration_ms: 5_000, max_stalled_count: 1 });
    expect(c.build_commit).toBe("0123abc");
  });
});
