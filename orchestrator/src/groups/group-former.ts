/**
 * Forms and re-forms expert-parallel groups on a timer: reads the live roster and the current groups,
 * plans (planner.ts), stores the plan. Workers learn their assignment from their next heartbeat.
 * Only the orchestrator holding the formation lock acts, so replicas never form conflicting groups.
 */
import type { Logger } from "@expertmesh/common";
import type { Group } from "@expertmesh/proto/cluster";
import type { MembershipStore } from "../membership/membership-store.ts";
import type { GroupStore } from "./group-store.ts";
import { type GroupPolicy, planGroups } from "./planner.ts";

export class GroupFormer {
  readonly #members: MembershipStore;
  readonly #groups: GroupStore;
  readonly #policy: GroupPolicy;
  readonly #owner: string;
  readonly #lockTtlMs: number;
  readonly #log: Logger;

  constructor(members: MembershipStore, groups: GroupStore, policy: GroupPolicy, owner: string, lockTtlMs: number, log: Logger) {
    this.#members = members;
    this.#groups = groups;
    this.#policy = policy;
    this.#owner = owner;
    this.#lockTtlMs = lockTtlMs;
    this.#log = log.child({ component: "group-former" });
  }

  /** One formation pass; returns the groups formed (empty when nothing changed or another owner acts). */
  async tick(now = Date.now()): Promise<Group[]> {
    if (!(await this.#groups.lock(this.#owner, this.#lockTtlMs))) return [];
    const [members, groups, last] = await Promise.all([this.#members.list(), this.#groups.list(), this.#groups.lastGeneration()]);
    let generation = last;
    const plan = planGroups(members, groups, this.#policy, () => ++generation, now);
    if (plan.dissolve.length === 0 && plan.form.length === 0) return [];
    await this.#groups.apply(
      plan.dissolve.map((d) => d.groupId),
      plan.form,
      generation,
    );
    for (const d of plan.dissolve) this.#log.warn({ groupId: d.groupId, reason: d.reason }, "group dissolved");
    for (const g of plan.form)
      this.#log.info({ groupId: g.groupId, model: g.model, ranks: g.memberIds, rendezvous: g.rendezvous }, "group formed");
    return plan.form;
  }
}
