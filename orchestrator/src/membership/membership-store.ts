/**
 * The membership port: a roster of workers held by leases. Adapters: Redis (production) and in-memory
 * (tests of layers above). Both must pass membership-store.conformance.ts.
 *
 * Contract:
 * - register() inserts or replaces a member and (re)starts its lease of ttlMs.
 * - heartbeat() extends a live lease and records the member's state (and load, when given); it returns null when the lease
 *   already expired or never existed (the worker must register again).
 * - list() returns only members whose lease is live, sorted by workerId; `model` filters when set.
 * - leave() removes the member at once; unknown ids are ignored.
 */
import type { Lease, Member, MemberLoad, MemberState } from "@expertmesh/proto/cluster";

export interface MembershipStore {
  register(member: Member, ttlMs: number): Promise<Lease>;
  heartbeat(workerId: string, state: MemberState, ttlMs: number, load?: MemberLoad): Promise<Lease | null>;
  leave(workerId: string): Promise<void>;
  list(model?: string): Promise<Member[]>;
}
