/** WorkerDirectory over the orchestrator's Membership service, refreshed every refresh_ms. */
import type { Logger } from "@expertmesh/common";
import { type Member, MembershipClient } from "@expertmesh/proto/cluster";
import { credentials, Metadata } from "@grpc/grpc-js";
import type { WorkerDirectory } from "../domain/worker-directory.ts";

export class OrchestratorDirectory implements WorkerDirectory {
  readonly #client: MembershipClient;
  readonly #log: Logger;
  #members: Member[] = [];
  #healthy = false;
  #refreshedAt: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(address: string, refreshMs: number, log: Logger) {
    // Each member's heartbeat carries a prefix summary of up to 64 KiB (MAX_SUMMARY_BITS): gRPC's default
    // 4 MiB would refuse the roster of ~60 such members. 64 MiB lists ~1,000.
    this.#client = new MembershipClient(address, credentials.createInsecure(), { "grpc.max_receive_message_length": 64 * 1024 * 1024 });
    this.#log = log.child({ component: "directory", orchestrator: address });
    const tick = () => {
      this.#client.listMembers({ model: "" }, new Metadata(), { deadline: Date.now() + refreshMs }, (err, res) => {
        if (err) {
          if (this.#healthy) this.#log.warn({ code: err.code, err: err.details }, "worker discovery failed");
          this.#healthy = false;
        } else {
          // On failure the last roster stays in use: its workers keep serving while the orchestrator is away.
          this.#members = res.members;
          this.#healthy = true;
          this.#refreshedAt = Date.now();
        }
        if (!this.#closed) {
          this.#timer = setTimeout(tick, refreshMs);
          this.#timer.unref();
        }
      });
    };
    tick();
  }

  members(): readonly Member[] {
    return this.#members;
  }
  healthy(): boolean {
    return this.#healthy;
  }
  rosterAgeMs(): number | undefined {
    return this.#refreshedAt === undefined ? undefined : Date.now() - this.#refreshedAt;
  }
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#client.close();
  }
}
