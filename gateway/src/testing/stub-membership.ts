/**
 * A Membership gRPC server that lists one ready member (`readyMember`), or the `members` given, and
 * refuses every other call: the orchestrator as far as a gateway's discovery needs one, for tests that
 * run no orchestrator.
 */
import { type Member, type MembershipServer, MembershipService } from "@expertmesh/proto/cluster";
import { Server, ServerCredentials, status } from "@grpc/grpc-js";
import { readyMember } from "./test-gateway.ts";

export async function startStubMembership(
  workerAddress: string,
  model: string,
  members?: readonly Member[],
): Promise<{ server: Server; address: string }> {
  const unimplemented = (_call: unknown, cb: (err: { code: number }) => void) => cb({ code: status.UNIMPLEMENTED });
  const impl: MembershipServer = {
    register: unimplemented,
    heartbeat: unimplemented,
    leave: unimplemented,
    listGroups: unimplemented,
    listMembers: (_call, cb) => cb(null, { members: members ? [...members] : [readyMember(workerAddress, model)] }),
  };
  const server = new Server();
  server.addService(MembershipService, impl);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { server, address: `127.0.0.1:${port}` };
}
