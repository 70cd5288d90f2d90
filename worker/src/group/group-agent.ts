/**
 * A worker's life in an expert-parallel group: the orchestrator's assignment (from each heartbeat)
 * decides what the worker runs. A new assignment opens the group's engine (rank 0: the serving engine;
 * other ranks: followers stepping in lockstep); a changed or withdrawn one (the group was dissolved)
 * closes it — in-flight requests end with a retryable error — and the worker waits for the next
 * formation. Transitions run one at a time, in order. A group that cannot open (rendezvous timed out,
 * a peer died while joining) makes the worker rejoin the roster, so the orchestrator re-forms it.
 */
import type { Logger } from "@expertmesh/common";
import { type GroupAssignment, MemberState } from "@expertmesh/proto/cluster";
import type { EnginePort } from "../engine/engine-port.ts";
import type { SwitchableEngine } from "./switchable-engine.ts";

export interface OpenedGroupEngine {
  /** What Generate reaches on this rank (followers answer NOT_READY: requests go to rank 0). */
  engine: EnginePort;
  /** Stops the engine; in-flight requests end with a retryable error. */
  close(): Promise<void>;
}

/** Opens this rank's part of a group: loads its shard and meets its peers. */
export interface GroupEngineFactory {
  /** `onLost` is called (at most once per open) when the group breaks under the engine (a peer died or hung). */
  open(assignment: GroupAssignment, onLost: (reason: string) => void): Promise<OpenedGroupEngine>;
}

export interface GroupMembershipPort {
  setState(state: MemberState): void;
  /** Re-registers as a fresh member (the orchestrator dissolves any group still holding the old one). */
  rejoin(): void;
}

const keyOf = (a: GroupAssignment | undefined) => (a ? `${a.groupId}#${a.generation}` : "");

export class GroupAgent {
  readonly #switchable: SwitchableEngine;
  readonly #factory: GroupEngineFactory;
  readonly #membership: GroupMembershipPort;
  readonly #waiting: (reason: string) => EnginePort;
  readonly #log: Logger;
  #key = "";
  #opened: OpenedGroupEngine | undefined;
  #chain: Promise<void> = Promise.resolve();
  #closed = false;
  /** Groups this worker left because they broke: never rejoined, even if a stale heartbeat still names one. */
  readonly #left = new Set<string>();

  constructor(
    switchable: SwitchableEngine,
    factory: GroupEngineFactory,
    membership: GroupMembershipPort,
    waiting: (reason: string) => EnginePort,
    log: Logger,
  ) {
    this.#switchable = switchable;
    this.#factory = factory;
    this.#membership = membership;
    this.#waiting = waiting;
    this.#log = log.child({ component: "group-agent" });
  }

  /** The assignment the orchestrator sent with the last heartbeat (undefined: none). */
  onAssignment(assignment: GroupAssignment | undefined): void {
    const key = keyOf(assignment);
    if (key === this.#key || this.#closed || this.#left.has(key)) return;
    this.#key = key;
    this.#chain = this.#chain.then(() => this.#transition(assignment, key));
  }

  async #transition(assignment: GroupAssignment | undefined, key: string): Promise<void> {
    if (this.#opened) {
      this.#log.warn({ next: key || null }, "leaving the group");
      this.#switchable.set(this.#waiting("the expert-parallel group is being re-formed"));
      this.#membership.setState(MemberState.MEMBER_STATE_STARTING);
      const opened = this.#opened;
      this.#opened = undefined;
      await opened.close().catch((err: Error) => this.#log.error({ err: err.message }, "closing the group engine failed"));
    }
    if (!assignment || key !== this.#key || this.#closed) return; // superseded while closing
    const { groupId, rank, worldSize } = assignment;
    // The rank is bound once here: the process logger carries none in orchestrated mode (one key per line).
    const log = this.#log.child({ groupId, rank, worldSize });
    log.info({ experts: assignment.experts.length }, "joining group");
    try {
      const opened = await this.#factory.open(assignment, (reason) => this.#lost(key, reason));
      if (key !== this.#key || this.#closed) {
        await opened.close();
        return;
      }
      this.#opened = opened;
      this.#switchable.set(opened.engine);
      this.#membership.setState(MemberState.MEMBER_STATE_READY);
      log.info("group engine ready");
    } catch (err) {
      log.error({ err: (err as Error).message }, "could not open the group engine; rejoining");
      this.#key = "";
      this.#membership.rejoin();
    }
  }

  /** The group under the engine broke: leave it and rejoin, so the orchestrator re-forms a group. */
  #lost(key: string, reason: string): void {
    if (key !== this.#key || this.#closed) return; // already left that group
    this.#log.error({ group: key, reason }, "the expert-parallel group broke; rejoining");
    this.#left.add(key);
    this.#key = "";
    this.#chain = this.#chain.then(() => this.#transition(undefined, ""));
    this.#membership.rejoin();
  }

  /** Closes the group engine for shutdown. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#chain;
    const opened = this.#opened;
    this.#opened = undefined;
    await opened?.close();
  }
}
