import { type Group, type Member, MemberState } from "@expertmesh/proto/cluster";
import { describe, expect, it } from "vitest";
import { member } from "../membership/membership-store.conformance.ts";
import { assignmentFor, contiguousPlacement, planGroups } from "./planner.ts";

const waiting = (id: string, registered: number, model = "gpt-oss-20b"): Member => ({
  ...member(id, model),
  wantsGroup: true,
  numExperts: 32,
  registeredUnixMs: registered,
});
const policy = (w: number) => ({ worldSize: () => w, rendezvous: (id: string) => `redis://r/?prefix=${id}` });
const counter = (start = 0) => {
  let g = start;
  return () => ++g;
};

describe("contiguousPlacement", () => {
  it("splits E experts over W ranks contiguously, disjoint and complete", () => {
    for (const [e, w] of [
      [32, 1],
      [32, 2],
      [32, 4],
      [128, 8],
      [5, 2],
    ] as const) {
      const p = contiguousPlacement(e, w);
      expect(p).toHaveLength(w);
      expect(p.flat()).toEqual(Array.from({ length: e }, (_, i) => i));
      for (const row of p) expect(row.length).toBeGreaterThanOrEqual(Math.floor(e / w));
    }
    expect(contiguousPlacement(32, 4)[1]).toEqual([8, 9, 10, 11, 12, 13, 14, 15]);
  });
});

describe("planGroups", () => {
  it("forms groups of W from waiting workers, oldest first, leaving the remainder waiting", () => {
    const ms = [waiting("c", 3), waiting("a", 1), waiting("b", 2), waiting("d", 4), waiting("e", 5)];
    const plan = planGroups(ms, [], policy(2), counter(), 100);
    expect(plan.dissolve).toEqual([]);
    expect(plan.form.map((g) => g.memberIds)).toEqual([
      ["a", "b"],
      ["c", "d"],
    ]);
    expect(plan.form.map((g) => g.generation)).toEqual([1, 2]);
    expect(plan.form[0]?.groupId).toBe("gpt-oss-20b/g1");
    expect(plan.form[0]?.placement.map((p) => p.experts.length)).toEqual([16, 16]);
    expect(plan.form[0]?.rendezvous).toBe("redis://r/?prefix=gpt-oss-20b/g1");
  });

  it("groups only workers of the same precision: ranks of a group must compute the same numbers", () => {
    const exact = (id: string, at: number) => ({ ...waiting(id, at), precision: "exact" });
    const ms = [waiting("a", 1), exact("b", 2), waiting("c", 3), exact("d", 4), exact("e", 5)];
    const plan = planGroups(ms, [], policy(2), counter(), 100);
    expect(plan.form.map((g) => g.memberIds)).toEqual([
      ["a", "c"],
      ["b", "d"],
    ]);
    expect(plan.form.map((g) => g.model)).toEqual(["gpt-oss-20b", "gpt-oss-20b"]);
  });

  it("ignores workers that do not ask for a group, draining ones and other models' workers per model", () => {
    const ms = [
      { ...waiting("a", 1), wantsGroup: false },
      { ...waiting("b", 2), state: MemberState.MEMBER_STATE_DRAINING },
      waiting("c", 3),
      waiting("x", 4, "gpt-oss-120b"),
    ];
    const plan = planGroups(ms, [], policy(2), counter(), 100);
    expect(plan.form).toEqual([]);
  });

  it("dissolves a group whose rank left, drains or restarted; keeps healthy groups and their members placed", () => {
    const ms = [waiting("a", 1), waiting("b", 2), waiting("c", 3), waiting("d", 4)];
    const first = planGroups(ms, [], policy(2), counter(), 100).form;
    // b is gone: group 1 dissolves; a waits (alone: no new group); c+d's group is untouched.
    const without = planGroups(
      ms.filter((m) => m.workerId !== "b"),
      first,
      policy(2),
      counter(2),
      200,
    );
    expect(without.dissolve.map((d) => d.groupId)).toEqual(["gpt-oss-20b/g1"]);
    expect(without.dissolve[0]?.reason).toMatch(/rank 1 \(b\)/);
    expect(without.form).toEqual([]);
    // b restarted (new registration time): dissolve; a and the new b form generation 3.
    const restarted = planGroups([waiting("a", 1), waiting("b", 9), waiting("c", 3), waiting("d", 4)], first, policy(2), counter(2), 300);
    expect(restarted.dissolve[0]?.reason).toMatch(/restarted/);
    expect(restarted.form.map((g) => [g.groupId, g.memberIds])).toEqual([["gpt-oss-20b/g3", ["a", "b"]]]);
    const draining = planGroups(
      ms.map((m) => (m.workerId === "c" ? { ...m, state: MemberState.MEMBER_STATE_DRAINING } : m)),
      first,
      policy(2),
      counter(2),
      400,
    );
    expect(draining.dissolve.map((d) => d.groupId)).toEqual(["gpt-oss-20b/g2"]);
  });

  it("hands each worker its rank, world size and experts", () => {
    const [g] = planGroups([waiting("a", 1), waiting("b", 2), waiting("c", 3), waiting("d", 4)], [], policy(4), counter(), 1).form;
    const a = assignmentFor("c", [g as Group]);
    expect(a).toMatchObject({ groupId: "gpt-oss-20b/g1", rank: 2, worldSize: 4, memberIds: ["a", "b", "c", "d"], model: "gpt-oss-20b" });
    expect(a?.experts).toEqual([16, 17, 18, 19, 20, 21, 22, 23]);
    expect(assignmentFor("zz", [g as Group])).toBeUndefined();
  });
});
