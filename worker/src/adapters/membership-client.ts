/**
 * Keeps this worker in the cluster roster: Register at start, Heartbeat every heartbeat_ms (re-registering
 * when the lease was lost), Leave on shutdown. The orchestrator being down never stops the worker; it
 * retries and logs. Each reply carries the worker's expert-parallel group assignment (if any), handed to
 * `onAssignment`.
 */
import type { Logger } from "@expertmesh/common";
import {
  Accelerator,
  type GroupAssignment,
  type HeartbeatResponse,
  type Member,
  type MemberLoad,
  MemberState,
  MembershipClient,
  type RegisterResponse,
} from "@expertmesh/proto/cluster";
import { credentials, status as GrpcStatus, Metadata, type ServiceError } from "@grpc/grpc-js";

const FAILURE_LOG_EVERY_MS = 30_000;

type Callback<Res> = (err: ServiceError | null, res: Res) => void;

/** Promise over a grpc-js unary call with a deadline. */
function unary<Res>(call: (md: Metadata, opts: { deadline: number }, cb: Callback<Res>) => unknown, timeoutMs = 2_000): Promise<Res> {
  return new Promise((resolve, reject) => {
    call(new Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

export class MembershipAgent {
  readonly #client: MembershipClient;
  readonly #member: Member;
  readonly #heartbeatMs: number;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;
  #registered = false;
  #failures = 0;
  #failureLoggedAt = 0;
  #state: MemberState = MemberState.MEMBER_STATE_STARTING;
  readonly #onAssignment: (a: GroupAssignment | undefined) => void;
  readonly #load: () => MemberLoad | undefined;

  constructor(
    address: string,
    member: Omit<Member, "state" | "registeredUnixMs">,
    heartbeatMs: number,
    log: Logger,
    onAssignment: (a: GroupAssignment | undefined) => void = () => {},
    load: () => MemberLoad | undefined = () => undefined,
  ) {
    this.#load = load;
    this.#client = new MembershipClient(address, credentials.createInsecure());
    this.#member = { ...member, state: MemberState.MEMBER_STATE_STARTING, registeredUnixMs: Date.now() };
    this.#onAssignment = onAssignment;
    this.#heartbeatMs = heartbeatMs;
    this.#log = log.child({ component: "membership", orchestrator: address });
  }

  start(state: MemberState): void {
    this.#state = state;
    const tick = async () => {
      try {
        if (!this.#registered) {
          const member = { ...this.#member, state: this.#state };
          const res = await unary<RegisterResponse>((md, o, cb) => this.#client.register({ member }, md, o, cb));
          this.#registered = true;
          this.#log.info({ workerId: this.#member.workerId }, "registered with the orchestrator");
          this.#onAssignment(res.assignment);
        } else {
          const load = this.#safeLoad();
          const beat = { workerId: this.#member.workerId, state: this.#state, ...(load ? { load } : {}) };
          const res = await unary<HeartbeatResponse>((md, o, cb) => this.#client.heartbeat(beat, md, o, cb));
          this.#onAssignment(res.assignment);
        }
        this.#succeeded();
      } catch (err) {
        const e = err as ServiceError;
        if (e.code === GrpcStatus.NOT_FOUND) this.#registered = false;
        this.#failed(e);
      }
      this.#timer = setTimeout(tick, this.#heartbeatMs);
      this.#timer.unref();
    };
    void tick();
  }

  /**
   * An unreachable orchestrator fails every heartbeat: the first failure is logged, then one line per
   * FAILURE_LOG_EVERY_MS with the count, so a long outage does not flood the log.
   */
  #failed(e: ServiceError): void {
    this.#failures++;
    const now = Date.now();
    if (this.#failures > 1 && now - this.#failureLoggedAt < FAILURE_LOG_EVERY_MS) return;
    this.#failureLoggedAt = now;
    this.#log.warn({ code: e.code, err: e.details ?? e.message, failures: this.#failures }, "membership call failed; retrying");
  }

  #succeeded(): void {
    if (this.#failures > 0) this.#log.info({ failures: this.#failures }, "reached the orchestrator again");
    this.#failures = 0;
  }

  /**
   * The state the next heartbeat reports. Draining is final: a group dissolved under a draining worker
   * (the planner dissolves it for that very reason) must not report it starting again, or the planner
   * would place a worker that is shutting down in a new group.
   */
  setState(state: MemberState): void {
    if (this.#state === MemberState.MEMBER_STATE_DRAINING) return;
    this.#state = state;
  }

  /** The load to report; a failure to read it never stops the heartbeat. */
  #safeLoad(): MemberLoad | undefined {
    try {
      return this.#load();
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, "could not read the load for the heartbeat");
      return undefined;
    }
  }

  /** Registers again as a fresh member at the next tick (a group still holding the old one is dissolved). */
  rejoin(): void {
    this.#member.registeredUnixMs = Date.now();
    this.#registered = false;
  }

  async leave(): Promise<void> {
    clearTimeout(this.#timer);
    if (this.#registered) {
      const workerId = this.#member.workerId;
      await unary((md, o, cb) => this.#client.leave({ workerId }, md, o, cb)).catch((err: Error) =>
        this.#log.warn({ err: err.message }, "leave failed"),
      );
    }
    this.#client.close();
  }
}

export { Accelerator };
