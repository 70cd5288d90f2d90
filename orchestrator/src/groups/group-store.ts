/**
 * The groups port: the expert-parallel groups formed now, and the generation counter. One orchestrator
 * at a time forms groups (lock()); everyone reads them (heartbeats carry each worker's assignment).
 */
import type { Group } from "@expertmesh/proto/cluster";

export interface GroupStore {
  list(): Promise<Group[]>;
  /** The last generation handed out (0 before the first group). */
  lastGeneration(): Promise<number>;
  /** Atomically: removes `dissolve`, stores `form`, records `lastGeneration`. */
  apply(dissolve: readonly string[], form: readonly Group[], lastGeneration: number): Promise<void>;
  /** Takes (or renews) the formation lock for `owner`; false while another owner holds it. */
  lock(owner: string, ttlMs: number): Promise<boolean>;
}
