/**
 * The per-group autoscaling signals, computed at scrape time from the roster: what each group's rank 0
 * (or a standalone worker) reported with its last heartbeat — requests running and waiting, KV cache
 * usage, generated tokens (total, and a rate over the last two scrapes). Labels: model, group.
 */
import { Gauge, type Registry } from "@expertmesh/common";
import type { Member } from "@expertmesh/proto/cluster";
import type { MembershipStore } from "../membership/membership-store.ts";
import type { GroupStore } from "./group-store.ts";
import { assignmentFor } from "./planner.ts";

const labelNames = ["model", "group"] as const;

export function registerGroupMetrics(
  registry: Registry,
  store: MembershipStore,
  groups: Pick<GroupStore, "list">,
  now: () => number = Date.now,
): void {
  // The serving rank speaks for its group; a standalone worker is a group of one named after itself. The
  // roster's records carry no placement (the group store does, as for ListMembers): without merging it every
  // rank of a group would count as a group of one.
  const leaders = async (): Promise<Array<{ labels: { model: string; group: string }; m: Member }>> => {
    const [members, all] = await Promise.all([store.list(), groups.list()]);
    return members
      .map((m) => {
        const a = assignmentFor(m.workerId, all);
        return a ? { ...m, groupId: a.groupId, rank: a.rank, worldSize: a.worldSize } : m;
      })
      .filter((m) => m.rank === 0 && m.load)
      .map((m) => ({ labels: { model: m.model, group: m.groupId || m.workerId }, m }));
  };
  const last = new Map<string, { tokens: number; at: number; rate: number }>();
  const gauge = (name: string, help: string, value: (m: Member) => number) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        this.reset();
        for (const { labels, m } of await leaders()) this.set(labels, value(m));
      },
    });
  gauge("expertmesh_group_requests_running", "Requests in the group's running batch", (m) => m.load?.requestsRunning ?? 0);
  gauge("expertmesh_group_requests_waiting", "Requests waiting in the group's scheduler", (m) => m.load?.requestsWaiting ?? 0);
  gauge("expertmesh_group_kv_cache_usage", "Fraction of the group's KV blocks in use (0-1)", (m) => m.load?.kvCacheUsage ?? 0);
  gauge("expertmesh_group_generation_tokens_total", "Tokens the group's serving rank generated since it started", (m) =>
    Number(m.load?.generationTokensTotal ?? 0),
  );
  gauge("expertmesh_group_generation_tokens_per_second", "Generated tokens per second over the last two scrapes", (m) => {
    const key = `${m.groupId || m.workerId}/${m.workerId}`;
    const tokens = Number(m.load?.generationTokensTotal ?? 0);
    const t = now();
    const prev = last.get(key);
    const rate = prev && t > prev.at && tokens >= prev.tokens ? ((tokens - prev.tokens) * 1000) / (t - prev.at) : (prev?.rate ?? 0);
    last.set(key, { tokens, at: t, rate });
    return rate;
  });
}
