/**
 * Expert-parallel group formation, as a pure function of the roster: which groups break (a rank gone,
 * draining, or restarted) and which new groups form from the workers waiting for a place. The group is
 * the unit that fails and restarts: a group with one rank gone is dissolved whole, and its surviving
 * workers wait for the next formation with the others.
 *
 * Placement: contiguous by default — rank r of W holds experts [⌊rE/W⌋, ⌊(r+1)E/W⌋).
 */
import { type Group, type GroupAssignment, type Member, MemberState } from "@expertmesh/proto/cluster";

export interface GroupPolicy {
  /** Ranks per group for a model (1 = every waiting worker is a group of its own). */
  worldSize(model: string): number;
  /** The rendezvous address the ranks of a new group meet at. */
  rendezvous(groupId: string): string;
}

export interface GroupPlan {
  /** Group ids to dissolve, with the reason (for the log). */
  dissolve: Array<{ groupId: string; reason: string }>;
  form: Group[];
}

/** Rank r's experts under the contiguous placement of E experts over W ranks. */
export function contiguousPlacement(numExperts: number, worldSize: number): number[][] {
  return Array.from({ length: worldSize }, (_, r) => {
    const from = Math.floor((r * numExperts) / worldSize);
    const to = Math.floor(((r + 1) * numExperts) / worldSize);
    return Array.from({ length: to - from }, (_, i) => from + i);
  });
}

function brokenReason(g: Group, live: Map<string, Member>): string | null {
  for (const [rank, id] of g.memberIds.entries()) {
    const m = live.get(id);
    if (!m) return `rank ${rank} (${id}) left or its lease expired`;
    if (m.state === MemberState.MEMBER_STATE_DRAINING) return `rank ${rank} (${id}) is draining`;
    if (m.registeredUnixMs !== g.memberRegisteredUnixMs[rank]) return `rank ${rank} (${id}) restarted`;
  }
  return null;
}

/**
 * Plans the next formation. `nextGeneration` hands out generation numbers (monotonic across the
 * cluster's life, so a worker can tell a re-formed group from the one it knew).
 */
export function planGroups(
  members: readonly Member[],
  groups: readonly Group[],
  policy: GroupPolicy,
  nextGeneration: () => number,
  now: number,
): GroupPlan {
  const live = new Map(members.map((m) => [m.workerId, m]));
  const dissolve: GroupPlan["dissolve"] = [];
  const placed = new Set<string>();
  for (const g of groups) {
    const reason = brokenReason(g, live);
    if (reason) dissolve.push({ groupId: g.groupId, reason });
    else for (const id of g.memberIds) placed.add(id);
  }
  // Workers wait per model and precision: the ranks of a group must compute the same numbers.
  const waiting = new Map<string, Member[]>();
  for (const m of members) {
    if (!m.wantsGroup || placed.has(m.workerId) || m.state === MemberState.MEMBER_STATE_DRAINING) continue;
    const key = `${m.model}\u0000${m.precision}`;
    waiting.set(key, [...(waiting.get(key) ?? []), m]);
  }
  const form: Group[] = [];
  for (const [key, ms] of [...waiting.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    const model = key.slice(0, key.indexOf("\u0000"));
    const w = policy.worldSize(model);
    // Oldest first: the workers that waited longest get placed first; ties by id for determinism.
    ms.sort((a, b) => a.registeredUnixMs - b.registeredUnixMs || a.workerId.localeCompare(b.workerId));
    for (let at = 0; at + w <= ms.length; at += w) {
      const ranks = ms.slice(at, at + w);
      const generation = nextGeneration();
      const groupId = `${model}/g${generation}`;
      const experts = Math.max(...ranks.map((m) => m.numExperts));
      form.push({
        groupId,
        generation,
        model,
        memberIds: ranks.map((m) => m.workerId),
        memberRegisteredUnixMs: ranks.map((m) => m.registeredUnixMs),
        placement: contiguousPlacement(experts, w).map((e) => ({ experts: e })),
        rendezvous: policy.rendezvous(groupId),
        formedUnixMs: now,
      });
    }
  }
  return { dissolve, form };
}

/** The assignment a worker reads from its group (undefined when it has none). */
export function assignmentFor(workerId: string, groups: readonly Group[]): GroupAssignment | undefined {
  for (const g of groups) {
    const rank = g.memberIds.indexOf(workerId);
    if (rank < 0) continue;
    return {
      groupId: g.groupId,
      generation: g.generation,
      rank,
      worldSize: g.memberIds.length,
      experts: g.placement[rank]?.experts ?? [],
      rendezvous: g.rendezvous,
      memberIds: g.memberIds,
      model: g.model,
    };
  }
  return undefined;
}
