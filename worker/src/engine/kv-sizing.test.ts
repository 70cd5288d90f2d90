/**
 * The sliding-window pool's size: the running sequences' windows and one step's chunks, plus the windows
 * of cached prefixes (WORKER_KV_CACHED_WINDOWS, or one per two windows' worth of the full pool), and the
 * config's bound on it.
 */
import { ConfigError } from "@expertmesh/common/config";
import { describe, expect, it } from "vitest";
import { loadWorkerConfig } from "../config.ts";
import { defaultCachedWindows, slidingPoolSize, windowBlocks } from "./kv-sizing.ts";

const base = { blockSize: 16, window: 128, maxNumSeqs: 4, maxTokensPerStep: 256, fullBlocks: 1800 };

describe("sliding pool size", () => {
  it("a window spans its blocks plus one when it does not start on a block boundary", () => {
    expect(windowBlocks(128, 16)).toBe(9);
    expect(windowBlocks(100, 16)).toBe(8);
  });

  it("live sequences' windows and a step's chunks, plus the configured cached windows", () => {
    const live = 4 * (8 + 2) + 256 / 16;
    expect(slidingPoolSize({ ...base, cachedWindows: 0 })).toEqual({ live, cachedWindows: 0, windowBlocks: 9, total: live });
    expect(slidingPoolSize({ ...base, cachedWindows: 10 }).total).toBe(live + 90);
  });

  it("by default, a cached window per two windows' worth of the full pool: about half its blocks", () => {
    expect(defaultCachedWindows(1800, 128, 16)).toBe(100);
    const size = slidingPoolSize(base);
    expect(size.cachedWindows).toBe(100);
    expect(size.total - size.live).toBeLessThanOrEqual(base.fullBlocks / 2);
  });

  it("WORKER_KV_CACHED_WINDOWS is validated: a whole number, at most the full pool's blocks", () => {
    expect(loadWorkerConfig({ WORKER_KV_CACHED_WINDOWS: "12" }).kv.cached_windows).toBe(12);
    expect(loadWorkerConfig({}).kv.cached_windows).toBeUndefined();
    expect(() => loadWorkerConfig({ WORKER_KV_CACHED_WINDOWS: "-1" })).toThrow(/kv\.cached_windows \(WORKER_KV_CACHED_WINDOWS\)/);
    const tooMany = () => loadWorkerConfig({ WORKER_KV_NUM_BLOCKS: "64", WORKER_KV_CACHED_WINDOWS: "65" });
    expect(tooMany).toThrow(ConfigError);
    expect(tooMany).toThrow(/at most kv\.num_blocks \(64\)/);
  });
});
