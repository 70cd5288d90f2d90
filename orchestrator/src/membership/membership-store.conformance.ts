/**
 * The conformance suite every MembershipStore adapter must pass (BullMQ-style adapter tests).
 * Call it from an adapter's test file with a factory that returns a fresh, empty store and a clock.
 */
import { Accelerator, type Member, MemberState } from "@expertmesh/proto/cluster";
import { describe, expect, it } from "vitest";
import type { MembershipStore } from "./membership-store.ts";

export interface Clock {
  now: () => number;
  advance(ms: number): void;
}

export function manualClock(start = 1_700_000_000_000): Clock {
  let t = start;
  return {
    now: () => t,
    advance: (ms) => {
      t += ms;
    },
  };
}

export function member(id: string, model = "gpt-oss-20b"): Member {
  return {
    workerId: id,
    address: `127.0.0.1:${5000 + id.length}`,
    model,
    accelerator: Accelerator.ACCELERATOR_CPU,
    state: MemberState.MEMBER_STATE_STARTING,
    groupId: "",
    rank: 0,
    worldSize: 1,
    registeredUnixMs: 1,
    numExperts: 8,
    wantsGroup: false,
    device: "cpu",
    precision: "default",
  };
}

export function membershipStoreConformance(name: string, make: (clock: Clock) => Promise<MembershipStore>): void {
  describe(`MembershipStore conformance: ${name}`, () => {
    it("registers and lists members sorted by id, filtered by model", async () => {
      const clock = manualClock();
      const store = await make(clock);
      await store.register(member("w-b"), 1_000);
      await store.register(member("w-a"), 1_000);
      await store.register(member("w-c", "gpt-oss-120b"), 1_000);
      expect((await store.list()).map((m) => m.workerId)).toEqual(["w-a", "w-b", "w-c"]);
      expect((await store.list("gpt-oss-120b")).map((m) => m.workerId)).toEqual(["w-c"]);
      expect(await store.list()).toContainEqual(member("w-a"));
    });

    it("expires leases and refuses heartbeats after expiry", async () => {
      const clock = manualClock();
      const store = await make(clock);
      const lease = await store.register(member("w-1"), 1_000);
      expect(lease.expiresUnixMs).toBe(clock.now() + 1_000);
      clock.advance(999);
      expect(await store.heartbeat("w-1", MemberState.MEMBER_STATE_READY, 1_000)).toMatchObject({ workerId: "w-1" });
      clock.advance(999);
      expect((await store.list())[0]?.state).toBe(MemberState.MEMBER_STATE_READY);
      clock.advance(1);
      expect(await store.list()).toEqual([]);
      expect(await store.heartbeat("w-1", MemberState.MEMBER_STATE_READY, 1_000)).toBeNull();
      expect(await store.heartbeat("never", MemberState.MEMBER_STATE_READY, 1_000)).toBeNull();
    });

    it("removes a member on leave; unknown ids are ignored", async () => {
      const clock = manualClock();
      const store = await make(clock);
      await store.register(member("w-1"), 1_000);
      await store.leave("w-1");
      await store.leave("w-unknown");
      expect(await store.list()).toEqual([]);
    });

    it("re-registering replaces the member and restarts the lease", async () => {
      const clock = manualClock();
      const store = await make(clock);
      await store.register(member("w-1"), 1_000);
      clock.advance(900);
      await store.register({ ...member("w-1"), address: "10.0.0.9:1" }, 1_000);
      clock.advance(900);
      expect(await store.list()).toEqual([{ ...member("w-1"), address: "10.0.0.9:1" }]);
    });
  });
}
