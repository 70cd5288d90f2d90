/**
 * The port through which the gateway learns which workers serve which model. The orchestrator adapter
 * polls Membership.ListMembers; tests use a static list.
 */
import type { Member } from "@expertmesh/proto/cluster";

export interface WorkerDirectory {
  /** Live members, as of the last successful refresh. */
  members(): readonly Member[];
  /** Whether the last refresh succeeded (the gateway is degraded, not down, when it did not). */
  healthy(): boolean;
  /** Milliseconds since the roster was last refreshed; undefined before the first success. */
  rosterAgeMs(): number | undefined;
  close(): void;
}

export class StaticWorkerDirectory implements WorkerDirectory {
  readonly #members: Member[];
  constructor(members: Member[]) {
    this.#members = members;
  }
  members(): readonly Member[] {
    return this.#members;
  }
  healthy(): boolean {
    return true;
  }
  rosterAgeMs(): number {
    return 0;
  }
  close(): void {}
}
