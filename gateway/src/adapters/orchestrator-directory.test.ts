/**
 * OrchestratorDirectory over a real Membership gRPC server: a roster whose members publish full-size
 * prefix summaries (64 KiB each, MAX_SUMMARY_BITS) is read whole even past gRPC's default 4 MiB message.
 */
import { createLogger } from "@expertmesh/common";
import { MAX_SUMMARY_BITS } from "@expertmesh/common/prefix";
import type { Member } from "@expertmesh/proto/cluster";
import type { Server } from "@grpc/grpc-js";
import { afterAll, describe, expect, it } from "vitest";
import { startStubMembership } from "../testing/stub-membership.ts";
import { readyMember } from "../testing/test-gateway.ts";
import { OrchestratorDirectory } from "./orchestrator-directory.ts";

const closers: Array<() => void> = [];
afterAll(() => {
  for (const close of closers) close();
});

/** A ready member whose heartbeat carries a full-size summary. */
function withFullSummary(i: number): Member {
  const m = readyMember(`127.0.0.1:${20_000 + i}`, "tiny");
  const bloom = Buffer.alloc(MAX_SUMMARY_BITS / 8, i);
  return {
    ...m,
    load: {
      requestsRunning: 0,
      requestsWaiting: 0,
      kvCacheUsage: 0,
      generationTokensTotal: 0,
      prefix: { blockSize: 16, salt: "tiny|default|bf16", bloom, blocks: 40_000, pinnedBlocks: 0, pinnedLoops: 0 },
    },
  };
}

describe("OrchestratorDirectory", () => {
  it("reads a roster larger than gRPC's default 4 MiB message (80 members with 64 KiB summaries)", { timeout: 60_000 }, async () => {
    const members = Array.from({ length: 80 }, (_, i) => withFullSummary(i));
    const { server, address } = await startStubMembership("", "tiny", members);
    closers.push(() => (server as Server).forceShutdown());
    const directory = new OrchestratorDirectory(address, 2000, createLogger("directory-test", "silent"));
    closers.push(() => directory.close());
    await expect.poll(() => directory.members().length, { timeout: 30_000 }).toBe(80);
    expect(directory.members()[79]?.load?.prefix?.bloom.length).toBe(64 * 1024);
  });
});
