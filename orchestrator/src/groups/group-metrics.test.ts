import { createMetricsRegistry } from "@expertmesh/common";
import { MemberState } from "@expertmesh/proto/cluster";
import { expect, it } from "vitest";
import { InMemoryMembershipStore } from "../adapters/in-memory-membership-store.ts";
import { member } from "../membership/membership-store.conformance.ts";
import { registerGroupMetrics } from "./group-metrics.ts";

it("exports each group's load as its rank 0 reported it, and the token rate between scrapes", async () => {
  let t = 1_000;
  const store = new InMemoryMembershipStore(() => t);
  const registry = createMetricsRegistry("orchestrator-test");
  registerGroupMetrics(registry, store, { list: async () => [] }, () => t);
  await store.register({ ...member("lead"), groupId: "m/g1", rank: 0 }, 60_000);
  await store.register({ ...member("follow"), groupId: "m/g1", rank: 1 }, 60_000);
  const load = (tokens: number) => ({ requestsRunning: 3, requestsWaiting: 5, kvCacheUsage: 0.25, generationTokensTotal: tokens });
  await store.heartbeat("lead", MemberState.MEMBER_STATE_READY, 60_000, load(100));
  await store.heartbeat("follow", MemberState.MEMBER_STATE_READY, 60_000, { ...load(0), requestsWaiting: 99 });
  const value = async (name: string) => {
    const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
    return m?.values.map((v) => [v.labels.group, v.value]);
  };
  expect(await value("expertmesh_group_requests_waiting")).toEqual([["m/g1", 5]]);
  expect(await value("expertmesh_group_requests_running")).toEqual([["m/g1", 3]]);
  expect(await value("expertmesh_group_kv_cache_usage")).toEqual([["m/g1", 0.25]]);
  t += 2_000;
  await store.heartbeat("lead", MemberState.MEMBER_STATE_READY, 60_000, load(300));
  expect(await value("expertmesh_group_generation_tokens_per_second")).toEqual([["m/g1", 100]]);
});

it("a group's ranks are one group, placed as the group store says (the roster's records carry no placement)", async () => {
  const store = new InMemoryMembershipStore(() => 1_000);
  const registry = createMetricsRegistry("orchestrator-test");
  const group = {
    groupId: "m/g7",
    generation: 7,
    model: "m",
    memberIds: ["b-rank0", "a-rank1"],
    memberRegisteredUnixMs: [],
    placement: [],
    rendezvous: "",
    formedUnixMs: 0,
  };
  registerGroupMetrics(registry, store, { list: async () => [group] });
  const load = { requestsRunning: 2, requestsWaiting: 0, kvCacheUsage: 0.5, generationTokensTotal: 10 };
  for (const id of ["a-rank1", "b-rank0", "solo"]) {
    await store.register(member(id), 60_000);
    await store.heartbeat(id, MemberState.MEMBER_STATE_READY, 60_000, load);
  }
  const running = (await registry.getMetricsAsJSON()).find((x) => x.name === "expertmesh_group_requests_running");
  expect(running?.values.map((v) => v.labels.group).sort()).toEqual(["m/g7", "solo"]);
});
