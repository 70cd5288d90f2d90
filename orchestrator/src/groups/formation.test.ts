/**
 * Group formation through the real orchestrator: real Redis, real gRPC Membership. Four workers that ask
 * to be placed form two groups of two; a rank whose lease expires dissolves its group (the survivor
 * loses its assignment); a newcomer and the survivor form a new generation.
 */
import { createLogger } from "@expertmesh/common";
import { type RedisServer, startRedisServer } from "@expertmesh/common/testing";
import {
  Accelerator,
  type GroupAssignment,
  type HeartbeatRequest,
  type HeartbeatResponse,
  type ListGroupsRequest,
  type ListGroupsResponse,
  type ListMembersRequest,
  type ListMembersResponse,
  type Member,
  MemberState,
  MembershipClient,
  type RegisterRequest,
  type RegisterResponse,
} from "@expertmesh/proto/cluster";
import { credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningOrchestrator, startOrchestrator } from "../app.ts";
import { OrchestratorConfigSchema } from "../config.ts";

let redis: RedisServer;
let orch: RunningOrchestrator;
let client: MembershipClient;

beforeAll(async () => {
  redis = await startRedisServer();
  const config = OrchestratorConfigSchema.parse({
    redis: { url: redis.url, key_prefix: "form:" },
    grpc: { port: 0 },
    membership: { lease_ttl_ms: 2_000, prune_interval_ms: 100 },
    groups: { world_size: 2 },
    log_level: "silent",
    batch: { metrics_port: 0 },
  });
  orch = await startOrchestrator(config, createLogger("orchestrator", "silent"));
  client = new MembershipClient(orch.address, credentials.createInsecure());
});

afterAll(async () => {
  client?.close();
  await orch?.close();
  await redis?.stop();
});

type Unary<Req, Res> = (req: Req, md: Metadata, cb: (e: ServiceError | null, r: Res) => void) => unknown;
const call = <Req, Res>(fn: Unary<Req, Res>, req: Req) =>
  new Promise<Res>((resolve, reject) => fn.call(client, req, new Metadata(), (e, r) => (e ? reject(e) : resolve(r))));

const worker = (id: string, registered: number): Member => ({
  workerId: id,
  address: `127.0.0.1:${6000 + registered}`,
  model: "gpt-oss-tiny",
  accelerator: Accelerator.ACCELERATOR_CPU,
  state: MemberState.MEMBER_STATE_STARTING,
  groupId: "",
  rank: 0,
  worldSize: 1,
  registeredUnixMs: registered,
  numExperts: 8,
  wantsGroup: true,
  device: "cpu",
  precision: "default",
});

const register = (m: Member) => call<RegisterRequest, RegisterResponse>(client.register, { member: m });
const beat = async (id: string): Promise<GroupAssignment | undefined> =>
  (await call<HeartbeatRequest, HeartbeatResponse>(client.heartbeat, { workerId: id, state: MemberState.MEMBER_STATE_STARTING }))
    .assignment;

async function until<T>(f: () => Promise<T | undefined>, ok: (v: T | undefined) => boolean, ms = 20_000): Promise<T | undefined> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("expert-parallel group formation", () => {
  it("forms, dissolves on a lost rank and re-forms with a newcomer", async () => {
    for (const [i, id] of ["w-a", "w-b", "w-c", "w-d"].entries()) await register(worker(id, i + 1));
    // All four keep their leases while the groups form, however long that takes on a loaded machine.
    const formingAlive = setInterval(() => void Promise.all(["w-a", "w-b", "w-c", "w-d"].map(beat)).catch(() => {}), 100);
    const a = await until(
      () => beat("w-a"),
      (v) => v !== undefined,
    );
    expect(a).toMatchObject({ rank: 0, worldSize: 2, memberIds: ["w-a", "w-b"], model: "gpt-oss-tiny" });
    expect(a?.experts).toEqual([0, 1, 2, 3]);
    expect(a?.rendezvous).toMatch(/^redis:\/\/127\.0\.0\.1:\d+\/?\?prefix=form%3Ardzv%3Agpt-oss-tiny%2Fg\d+%3A$/);
    expect(await beat("w-b")).toMatchObject({ groupId: a?.groupId, rank: 1, experts: [4, 5, 6, 7] });
    // The second group may form on a later round of the former than the first.
    const c = await until(
      () => beat("w-c"),
      (v) => v !== undefined,
    );
    expect(c?.groupId).not.toBe(a?.groupId);
    expect(c?.memberIds).toEqual(["w-c", "w-d"]);

    const listed = (await call<ListMembersRequest, ListMembersResponse>(client.listMembers, { model: "" })).members;
    expect(listed.find((m) => m.workerId === "w-b")).toMatchObject({ groupId: a?.groupId, rank: 1, worldSize: 2 });
    expect((await call<ListGroupsRequest, ListGroupsResponse>(client.listGroups, { model: "gpt-oss-tiny" })).groups).toHaveLength(2);

    // w-b stops heartbeating: its lease expires, its group dissolves, w-a loses the assignment.
    clearInterval(formingAlive);
    const keepAlive = setInterval(() => void Promise.all(["w-a", "w-c", "w-d"].map(beat)).catch(() => {}), 100);
    try {
      const lost = await until(
        () => beat("w-a").then((v) => v ?? null),
        (v) => v === null,
      );
      expect(lost).toBeNull();
      expect(await beat("w-c")).toMatchObject({ groupId: c?.groupId });
      // A newcomer arrives: it and the survivor form a new generation.
      await register(worker("w-e", 10));
      const again = await until(
        () => beat("w-e"),
        (v) => v !== undefined,
      );
      expect(again?.memberIds).toEqual(["w-a", "w-e"]);
      expect(again?.generation).toBeGreaterThan(Math.max(a?.generation ?? 0, c?.generation ?? 0));
    } finally {
      clearInterval(keepAlive);
    }
  });
});
