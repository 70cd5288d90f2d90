/**
 * One rank of a communicator test, as its own process: joins the group, then
 *   collectives  all-reduces [rank + 1, 10 × (rank + 1)], broadcasts from every root, all-gathers
 *                [rank, 10 × rank] (int32), passes a barrier; prints what it got as JSON
 *   stall        joins and never takes part in a collective (a hung peer, for the watchdog)
 *   die          joins, passes a barrier and exits (a dead peer)
 *   survive      passes that barrier, then runs the collectives (the dead peer's partner)
 *   abort        passes a barrier, aborts its communicator, then runs the collectives
 * A failure prints {ok: false, native, status, commFailure, message, ms} (ms: since the collectives began).
 *   node comm-rank.ts RANK WORLD RENDEZVOUS collectives|stall|die|survive|abort [TIMEOUT_MS]
 */
import { Communicator } from "../communicator.ts";
import { NativeError } from "../native-error.ts";

const [rank, world, rendezvous, mode, timeout] = process.argv.slice(2);
const print = (v: unknown) => process.stdout.write(`${JSON.stringify(v)}\n`);
let t0 = performance.now();
try {
  const comm = await Communicator.connect({
    rank: Number(rank),
    world: Number(world),
    rendezvous: rendezvous as string,
    timeoutMs: Number(timeout ?? 10_000),
  });
  if (mode === "stall") {
    await new Promise((r) => setTimeout(r, 60_000));
  } else if (mode === "die") {
    await comm.barrier(); // every rank is connected: the exit is seen as a broken connection
    process.exit(0);
  } else {
    // Both wait until every rank is connected: a rank that leaves sooner breaks its peers' join.
    if (mode === "survive" || mode === "abort") await comm.barrier();
    if (mode === "abort") comm.abort("test: the group is re-formed");
    t0 = performance.now();
    const sum = new Float32Array([comm.rank + 1, 10 * (comm.rank + 1)]);
    await comm.allReduceSum(sum);
    const broadcasts: number[] = [];
    for (let root = 0; root < comm.world; root++) {
      const b = new Int32Array([comm.rank === root ? 100 + root : -1]);
      await comm.broadcast(b, root);
      broadcasts.push(b[0] as number);
    }
    const gathered = await comm.allGather(new Int32Array([comm.rank, 10 * comm.rank]));
    await comm.barrier();
    print({ ok: true, sum: Array.from(sum), broadcasts, gathered: Array.from(new Int32Array(gathered.buffer)) });
  }
} catch (err) {
  const e = err as NativeError;
  print({
    ok: false,
    native: e instanceof NativeError,
    status: e.statusName,
    commFailure: e.commFailure,
    message: e.message,
    ms: performance.now() - t0,
  });
}
process.exit(0);
