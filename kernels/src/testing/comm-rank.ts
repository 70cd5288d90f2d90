/**
 * One rank of a communicator test, as its own process: joins the group, then either all-reduces
 * [rank + 1, 10 × (rank + 1)] and prints the result as JSON ("sum"), or joins and never takes part in a
 * collective ("stall": a hung peer, for the watchdog).
 *   node comm-rank.ts RANK WORLD RENDEZVOUS sum|stall [TIMEOUT_MS]
 */
import { Communicator } from "../communicator.ts";
import { NativeError } from "../native-error.ts";

const [rank, world, rendezvous, mode, timeout] = process.argv.slice(2);
const comm = await Communicator.connect({
  rank: Number(rank),
  world: Number(world),
  rendezvous: rendezvous as string,
  timeoutMs: Number(timeout ?? 10_000),
});
if (mode === "stall") {
  await new Promise((r) => setTimeout(r, 60_000));
} else {
  const data = new Float32Array([comm.rank + 1, 10 * (comm.rank + 1)]);
  const t0 = performance.now();
  try {
    await comm.allReduceSum(data);
    process.stdout.write(`${JSON.stringify({ ok: true, data: Array.from(data) })}\n`);
  } catch (err) {
    const e = err as NativeError;
    process.stdout.write(
      `${JSON.stringify({ ok: false, native: e instanceof NativeError, status: e.statusName, message: e.message, ms: performance.now() - t0 })}\n`,
    );
  }
}
process.exit(0);
