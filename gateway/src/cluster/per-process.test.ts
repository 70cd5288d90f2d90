import { describe, expect, it } from "vitest";
import { loadGatewayConfig } from "../config.ts";
import { perProcessConfig } from "./per-process.ts";

describe("perProcessConfig", () => {
  it("leaves a single process's config as it is", () => {
    const c = loadGatewayConfig({ GATEWAY_MAX_CONCURRENT: "7" });
    expect(perProcessConfig(c)).toBe(c);
  });

  it("gives each of N processes ceil(limit / N) of the in-process limits, and no positive limit becomes 0", () => {
    const c = perProcessConfig(
      loadGatewayConfig({
        GATEWAY_PROCESSES: "2",
        GATEWAY_MAX_CONCURRENT: "513",
        GATEWAY_MAX_QUEUED: "0",
        GATEWAY_PARKING_MAX: "1",
        GATEWAY_RENDER_THREADS: "4",
        GATEWAY_RENDER_MAX_QUEUED: "256",
        GATEWAY_BATCH_MAX_INFLIGHT_WHILE_ONLINE: "1",
        GATEWAY_REQUESTS_PER_MINUTE: "100",
      }),
    );
    expect(c.admission.max_concurrent).toBe(257);
    expect(c.admission.max_queued).toBe(0);
    expect(c.parking.max_parked).toBe(1);
    expect(c.render_threads).toBe(2);
    expect(c.render_max_queued).toBe(128);
    expect(c.batches.max_inflight_while_online).toBe(1);
    // Shared (Redis or the primary), not divided.
    expect(c.limits.requests_per_minute).toBe(100);
  });

  it("refuses a process count that is not 1–64", () => {
    expect(() => loadGatewayConfig({ GATEWAY_PROCESSES: "0" })).toThrow(/GATEWAY_PROCESSES/);
    expect(() => loadGatewayConfig({ GATEWAY_PROCESSES: "65" })).toThrow(/GATEWAY_PROCESSES/);
  });
});
