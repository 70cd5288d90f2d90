/** gRPC handlers for expertmesh.cluster.v1.Membership over the MembershipStore port. */
import type { Logger } from "@expertmesh/common";
import type { MembershipServer } from "@expertmesh/proto/cluster";
import { type ServerErrorResponse, status } from "@grpc/grpc-js";
import type { MembershipStore } from "../membership/membership-store.ts";

function fail(code: status, details: string): ServerErrorResponse {
  return Object.assign(new Error(details), { code, details });
}

export function createMembershipService(store: MembershipStore, leaseTtlMs: number, log: Logger): MembershipServer {
  const internal = (err: unknown) => {
    log.error({ err }, "membership store failed");
    return fail(status.UNAVAILABLE, `membership store unavailable: ${(err as Error).message}`);
  };
  return {
    register(call, callback) {
      const member = call.request.member;
      if (!member?.workerId || !member.address) {
        callback(fail(status.INVALID_ARGUMENT, "member.worker_id and member.address are required"));
        return;
      }
      store.register(member, leaseTtlMs).then(
        (lease) => {
          log.info({ workerId: member.workerId, address: member.address, model: member.model }, "worker registered");
          callback(null, { lease });
        },
        (err) => callback(internal(err)),
      );
    },
    heartbeat(call, callback) {
      store.heartbeat(call.request.workerId, call.request.state, leaseTtlMs).then(
        (lease) =>
          lease
            ? callback(null, { lease })
            : callback(fail(status.NOT_FOUND, `no live lease for worker ${call.request.workerId}; register again`)),
        (err) => callback(internal(err)),
      );
    },
    leave(call, callback) {
      store.leave(call.request.workerId).then(
        () => {
          log.info({ workerId: call.request.workerId }, "worker left");
          callback(null, {});
        },
        (err) => callback(internal(err)),
      );
    },
    listMembers(call, callback) {
      store.list(call.request.model || undefined).then(
        (members) => callback(null, { members }),
        (err) => callback(internal(err)),
      );
    },
  };
}
