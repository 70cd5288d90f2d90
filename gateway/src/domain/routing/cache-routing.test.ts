/** The routing score as a pure function of what groups publish, and the tool-loop table. */
import { blockHashes, PrefixSummary, prefixRoot, summaryBits } from "@expertmesh/common/prefix";
import type { Member } from "@expertmesh/proto/cluster";
import { describe, expect, it } from "vitest";
import { readyMember } from "../../testing/test-gateway.ts";
import { cheapest, PromptChains, publishedLoad, staysWith } from "./cache-routing.ts";
import { ToolLoops } from "./tool-loops.ts";

const SALT = "tiny|default|bf16";
const BS = 16;

/** A member whose summary holds the first `blocks` blocks of `tokens`, with `load` requests running. */
function member(address: string, tokens: number[], blocks: number, load = 0, salt = SALT, pinnedLoops = 0): Member {
  const held = blockHashes(prefixRoot(salt), tokens, BS, blocks);
  const bloom = PrefixSummary.of(held, summaryBits(256)).bits;
  return {
    ...readyMember(address, "tiny"),
    load: {
      requestsRunning: load,
      requestsWaiting: 0,
      kvCacheUsage: 0,
      generationTokensTotal: 0,
      prefix: { blockSize: BS, salt, bloom: Buffer.from(bloom), blocks: held.length, pinnedBlocks: 0, pinnedLoops },
    },
  };
}

describe("cheapest", () => {
  it("prefers the group holding more of the prompt at equal load", () => {
    const g = cheapest(
      [
        { address: "a", cached: 320, load: 1 },
        { address: "b", cached: 960, load: 1 },
      ],
      1000,
      0.25,
    );
    expect(g?.address).toBe("b");
  });

  it("trades cached tokens against load by the weight: (P − cached) + weight × P × load", () => {
    const groups = [
      { address: "warm", cached: 900, load: 3 }, // 100 + w·1000·3
      { address: "cold", cached: 0, load: 0 }, // 1000
    ];
    expect(cheapest(groups, 1000, 0.25)?.address).toBe("warm"); // 850 < 1000
    expect(cheapest(groups, 1000, 0.5)?.address).toBe("cold"); // 1600 > 1000
    expect(cheapest(groups, 1000, 0)?.address).toBe("warm");
  });

  it("breaks ties by address, whatever the order given (replicated gateways agree)", () => {
    const a = { address: "10.0.0.2:50051", cached: 480, load: 1 };
    const b = { address: "10.0.0.1:50051", cached: 480, load: 1 };
    expect(cheapest([a, b], 600, 0.25)?.address).toBe("10.0.0.1:50051");
    expect(cheapest([b, a], 600, 0.25)?.address).toBe("10.0.0.1:50051");
  });

  it("gives no answer when no group holds any of the prompt (the caller falls back to least-load)", () => {
    expect(cheapest([{ address: "a", cached: 0, load: 0 }], 100, 0.25)).toBeUndefined();
    expect(cheapest([], 100, 0.25)).toBeUndefined();
  });
  it("a tool loop stays with its holder until it carries more than 1.5× the mean load, then goes to the cheapest", () => {
    const holder = { address: "b-holder", cached: 1900, load: 6 };
    const idle = { address: "a-idle", cached: 80, load: 3 }; // mean 4.5: 6 is within 1.5×
    expect(staysWith(holder, [holder, idle], 2000, 0.25)).toBe(holder);
    const idler = { ...idle, load: 1 }; // mean 3.5: 6 > 5.25
    expect(staysWith(holder, [holder, idler], 2000, 0.25)).toBe(idler); // 1920 + 500 < 100 + 3000
    const warm = { address: "c-warm", cached: 1500, load: 1 };
    expect(staysWith(holder, [holder, idler, warm], 2000, 0.25)).toBe(warm);
    expect(staysWith(holder, [holder], 2000, 0.25)).toBe(holder);
  });
});

describe("PromptChains", () => {
  const prompt = Array.from({ length: 200 }, (_, i) => (i * 31) % 1000);

  it("reads a member's summary: the leading blocks it holds, at most P − 1 tokens", () => {
    const chains = new PromptChains(prompt);
    expect(chains.cachedOn(member("a", prompt, 5))).toBe(80);
    expect(chains.cachedOn(member("b", prompt, 12))).toBe(192);
    expect(new PromptChains(prompt.slice(0, 192)).cachedOn(member("c", prompt, 12))).toBe(191);
    expect(chains.cachedOn(readyMember("d", "tiny"))).toBe(0); // nothing published
  });

  it("hashes under each member's published salt: blocks another engine wrote never match", () => {
    expect(new PromptChains(prompt).cachedOn(member("a", prompt, 12, 0, "tiny|default|f32"))).toBe(12 * BS);
    const bf16 = member("b", prompt, 12);
    const prefix = bf16.load?.prefix as NonNullable<NonNullable<Member["load"]>["prefix"]>;
    const relabelled: Member = {
      ...bf16,
      load: { ...(bf16.load as NonNullable<Member["load"]>), prefix: { ...prefix, salt: "tiny|exact|f32" } },
    };
    expect(new PromptChains(prompt).cachedOn(relabelled)).toBe(0);
  });

  it("published load is the requests running and waiting, plus the tool loops pinned there", () => {
    expect(publishedLoad(member("a", prompt, 1, 3))).toBe(3);
    expect(publishedLoad(member("a", prompt, 1, 3, SALT, 4))).toBe(7);
    expect(publishedLoad(readyMember("b", "tiny"))).toBe(0);
  });
});

describe("ToolLoops", () => {
  const chain = ["h0", "h1", "h2", "h3"];

  it("finds the loop a prompt continues by its key in the prompt's chain, once", () => {
    const loops = new ToolLoops();
    loops.add("h1", { requestId: "turn-1", address: "a" }, 1000);
    loops.add("h3", { requestId: "turn-2", address: "b" }, 1000);
    expect(loops.take(chain, 0)).toEqual({ requestId: "turn-2", address: "b", blocks: 4 }); // the latest turn
    expect(loops.take(["h0", "h1", "x"], 0)).toEqual({ requestId: "turn-1", address: "a", blocks: 2 });
    expect(loops.take(chain, 0)).toBeUndefined();
  });

  it("ignores expired loops and keeps at most maxEntries, oldest dropped first", () => {
    const loops = new ToolLoops(2);
    loops.add("h0", { requestId: "old", address: "a" }, 500);
    expect(loops.take(chain, 500)).toBeUndefined();
    loops.add("h0", { requestId: "r0", address: "a" }, 1000);
    loops.add("h1", { requestId: "r1", address: "a" }, 1000);
    loops.add("h2", { requestId: "r2", address: "a" }, 1000);
    expect(loops.size).toBe(2);
    expect(loops.take(["h0"], 0)).toBeUndefined();
  });
});
