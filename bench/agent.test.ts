/**
 * bench/agent --quick as a test: the same simulated agents against two real worker groups, least-load
 * without pins and then cache-aware routing with pins. Cache-aware routing must compute fewer prefill
 * tokens than least-load, and follow-up turns are routed to their pinned prefix's holder.
 */
import { describe, expect, it } from "vitest";
import { compare, QUICK } from "./agent.ts";

describe("bench/agent --quick", () => {
  it("cache-aware routing with pins computes fewer prefill tokens than least-load", { timeout: 600_000 }, async () => {
    const [base, cache] = await compare(2, QUICK, 1);
    // Every follow-up that came after a tool call finds its pinned prefix's holder.
    expect(cache.decisions.pinned).toBeGreaterThan(0);
    expect(base.decisions.least_load).toBe(base.turns);
    expect(cache.prefillTokens / base.prefillTokens).toBeLessThan(1);
  });
});
