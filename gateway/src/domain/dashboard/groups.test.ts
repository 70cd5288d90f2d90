import { type Member, MemberState } from "@expertmesh/proto/cluster";
import { describe, expect, it } from "vitest";
import { readyMember } from "../../testing/test-gateway.ts";
import { groupViews } from "./groups.ts";

function rank(workerId: string, rank: number, patch: Partial<Member> = {}): Member {
  return {
    ...readyMember(`127.0.0.1:${5000 + rank}`, "gpt-oss-20b", workerId),
    groupId: "gpt-oss-20b/g1",
    rank,
    worldSize: 2,
    wantsGroup: true,
    load: { requestsRunning: 3, requestsWaiting: 1, kvCacheUsage: 0.5, generationTokensTotal: 100 },
    ...patch,
  };
}

const noRate = () => null;

describe("engine groups for the dashboard", () => {
  it("a group with every rank ready is ready, with rank 0's load", () => {
    const [g] = groupViews([rank("w2", 1, { load: undefined }), rank("w1", 0)], (id) => (id === "gpt-oss-20b/g1" ? 12.5 : null));
    expect(g).toMatchObject({
      id: "gpt-oss-20b/g1",
      state: "ready",
      worldSize: 2,
      device: "cpu",
      load: { running: 3, waiting: 1, kvCacheUsage: 0.5, tokensPerS: 12.5 },
    });
    expect(g?.ranks.map((r) => [r.rank, r.workerId, r.state])).toEqual([
      [0, "w1", "ready"],
      [1, "w2", "ready"],
    ]);
  });

  it("is forming while a rank is missing, starting, or waiting to be placed; draining once one drains", () => {
    expect(groupViews([rank("w1", 0)], noRate)[0]?.state).toBe("forming");
    expect(groupViews([rank("w1", 0), rank("w2", 1, { state: MemberState.MEMBER_STATE_STARTING })], noRate)[0]?.state).toBe("forming");
    const unplaced = rank("w3", 0, { groupId: "", worldSize: 1 });
    expect(groupViews([unplaced], noRate)).toMatchObject([{ id: "w3", state: "forming" }]);
    expect(groupViews([rank("w1", 0), rank("w2", 1, { state: MemberState.MEMBER_STATE_DRAINING })], noRate)[0]?.state).toBe("draining");
  });

  it("a worker serving alone is a ready group of one", () => {
    expect(groupViews([readyMember("127.0.0.1:1", "m", "solo")], noRate)).toMatchObject([{ id: "solo", state: "ready", worldSize: 1 }]);
  });
});
