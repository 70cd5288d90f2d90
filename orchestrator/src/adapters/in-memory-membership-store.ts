/** In-memory MembershipStore for tests of the layers above; same contract as the Redis adapter. */
import type { Lease, Member, MemberLoad, MemberState } from "@expertmesh/proto/cluster";
import type { MembershipStore } from "../membership/membership-store.ts";

export class InMemoryMembershipStore implements MembershipStore {
  readonly #members = new Map<string, { member: Member; expires: number }>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  async register(member: Member, ttlMs: number): Promise<Lease> {
    const expires = this.#now() + ttlMs;
    this.#members.set(member.workerId, { member: { ...member }, expires });
    return { workerId: member.workerId, ttlMs, expiresUnixMs: expires };
  }

  async heartbeat(workerId: string, state: MemberState, ttlMs: number, load?: MemberLoad): Promise<Lease | null> {
    const entry = this.#members.get(workerId);
    if (!entry || entry.expires <= this.#now()) return null;
    entry.expires = this.#now() + ttlMs;
    entry.member.state = state;
    if (load) entry.member.load = load;
    return { workerId, ttlMs, expiresUnixMs: entry.expires };
  }

  async leave(workerId: string): Promise<void> {
    this.#members.delete(workerId);
  }

  async list(model?: string): Promise<Member[]> {
    const now = this.#now();
    return [...this.#members.values()]
      .filter((e) => e.expires > now && (!model || e.member.model === model))
      .map((e) => ({ ...e.member }))
      .sort((a, b) => a.workerId.localeCompare(b.workerId));
  }
}
