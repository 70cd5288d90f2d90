/**
 * Engine groups as the dashboard shows them, from the orchestrator's roster (the gateway's WorkerDirectory):
 * a group's ranks, model, device, state and load. A worker that serves alone (no group id) is a group of
 * one. Rank 0 speaks for its group in heartbeats, so the group's load is rank 0's.
 */
import { type Member, MemberState } from "@expertmesh/proto/cluster";
import type { GroupState, GroupView, RankView } from "@expertmesh/ui/dashboard-state";

const rankStates: Record<number, RankView["state"]> = {
  [MemberState.MEMBER_STATE_STARTING]: "starting",
  [MemberState.MEMBER_STATE_READY]: "ready",
  [MemberState.MEMBER_STATE_DRAINING]: "draining",
};

/** The group a member belongs to: its group id, or itself while it serves alone or waits to be placed. */
export function groupKey(m: Member): string {
  return m.groupId || m.workerId;
}

/** Tokens generated so far by each group (its rank 0's counter), for rates between two readings. */
export function groupTokens(members: readonly Member[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of members) if (m.rank === 0 && m.load) out.set(groupKey(m), Number(m.load.generationTokensTotal));
  return out;
}

/**
 * Forming until every rank of the world size is there and ready (a worker waiting to be placed is forming);
 * draining as soon as one rank drains.
 */
function stateOf(ranks: readonly Member[], worldSize: number): GroupState {
  if (ranks.some((m) => m.state === MemberState.MEMBER_STATE_DRAINING)) return "draining";
  const placed = ranks.every((m) => !m.wantsGroup || m.groupId !== "");
  const complete = ranks.length >= worldSize && ranks.every((m) => m.state === MemberState.MEMBER_STATE_READY);
  return placed && complete ? "ready" : "forming";
}

export function groupViews(members: readonly Member[], tokensPerS: (key: string) => number | null): GroupView[] {
  const byKey = new Map<string, Member[]>();
  for (const m of members) byKey.set(groupKey(m), [...(byKey.get(groupKey(m)) ?? []), m]);
  return [...byKey.entries()]
    .map(([id, ranks]) => {
      ranks.sort((a, b) => a.rank - b.rank);
      const leader = ranks[0] as Member;
      const worldSize = Math.max(leader.worldSize, 1);
      return {
        id,
        model: leader.model,
        device: [...new Set(ranks.map((m) => m.device || "unknown"))].join(", "),
        state: stateOf(ranks, worldSize),
        worldSize,
        ranks: ranks.map((m) => ({ rank: m.rank, workerId: m.workerId, state: rankStates[m.state] ?? "unknown" })),
        load: {
          running: leader.load?.requestsRunning ?? 0,
          waiting: leader.load?.requestsWaiting ?? 0,
          kvCacheUsage: leader.load?.kvCacheUsage ?? 0,
          tokensPerS: tokensPerS(id),
        },
      };
    })
    .sort((a, b) => a.model.localeCompare(b.model) || a.id.localeCompare(b.id));
}
