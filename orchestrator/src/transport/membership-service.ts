/** gRPC handlers for expertmesh.cluster.v1.Membership over the MembershipStore port. */
import type { Logger } from "@expertmesh/common";
import type { MembershipServer } from "@expertmesh/proto/cluster";
import { type ServerErrorResponse, status } from "@grpc/grpc-js";
import type { GroupStore } from "../groups/group-store.ts";
import { assignmentFor } from "../groups/planner.ts";
import type { MembershipStore } from "../membership/membership-store.ts";

function fail(code: status, details: string): ServerErrorResponse {
  return Object.assign(new Error(details), { code, details });
}

export function createMembershipService(store: MembershipStore, groups: GroupStore, leaseTtlMs: number, log: Logger): MembershipServer {
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
      Promise.all([store.register(member, leaseTtlMs), groups.list()]).then(
        ([lease, all]) => {
          log.info({ workerId: member.workerId, address: member.address, model: member.model }, "worker registered");
          callback(null, { lease, assignment: assignmentFor(member.workerId, all) });
        },
        (err) => callback(internal(err)),
      );
    },
    heartbeat(call, callback) {
      Promise.all([store.heartbeat(call.request.workerId, call.request.state, leaseTtlMs, call.request.load), groups.list()]).then(
        ([lease, all]) =>
          lease
            ? callback(null, { lease, assignment: assignmentFor(call.request.workerId, all) })
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
      Promise.all([store.list(call.request.model || undefined), groups.list()]).then(
        ([members, all]) =>
          callback(null, {
            // A placed worker is shown with its group, rank and world size (routers send work to rank 0).
            members: members.map((m) => {
              const a = assignmentFor(m.workerId, all);
              return a ? { ...m, groupId: a.groupId, rank: a.rank, worldSize: a.worldSize } : m;
            }),
          }),
        (err) => callback(internal(err)),
      );
    },
    listGroups(call, callback) {
      groups.list().then(
        (all) => callback(null, { groups: all.filter((g) => !call.request.model || g.model === call.request.model) }),
        (err) => callback(internal(err)),
      );
    },
  };
}
