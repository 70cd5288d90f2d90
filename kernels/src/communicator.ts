/**
 * The communicator that joins the W ranks of an expert-parallel group (Gloo over TCP on CPU ranks).
 * Ranks meet at a rendezvous: `file:///dir` (local ranks: tests, the CLI) or
 * `redis://host:port/?prefix=...` (the cluster's Redis, as the orchestrator publishes it). Every
 * collective is bounded by `timeoutMs` (the watchdog): a peer that died or hangs makes it fail with a
 * NativeError of status communicator_error, and the communicator stays failed.
 */
import { addon, type RawCommunicator } from "./addon.ts";

export interface CommunicatorOptions {
  rank: number;
  world: number;
  rendezvous: string;
  /** Bounds the join and every collective (default 30 s). */
  timeoutMs?: number;
}

export class Communicator {
  readonly rank: number;
  readonly world: number;
  readonly timeoutMs: number;
  /** @internal */
  readonly raw: RawCommunicator;

  private constructor(raw: RawCommunicator, rank: number, world: number, timeoutMs: number) {
    this.raw = raw;
    this.rank = rank;
    this.world = world;
    this.timeoutMs = timeoutMs;
  }

  /** Joins the group; resolves once every rank joined (rejects after the timeout). Never blocks the event loop. */
  static async connect(o: CommunicatorOptions): Promise<Communicator> {
    const timeoutMs = o.timeoutMs ?? 30_000;
    if (!Number.isInteger(o.world) || o.world < 1) throw new RangeError(`world must be an integer >= 1, got ${o.world}`);
    if (!Number.isInteger(o.rank) || o.rank < 0 || o.rank >= o.world)
      throw new RangeError(`rank must be an integer in [0, ${o.world}), got ${o.rank}`);
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 2 ** 31 - 1)
      throw new RangeError(`timeoutMs must be a positive integer, got ${timeoutMs}`);
    if (!/^(file:\/\/\/.+|redis:\/\/.+)$/.test(o.rendezvous))
      throw new RangeError(`rendezvous must be file:///dir or redis://host:port/?prefix=..., got '${o.rendezvous}'`);
    const raw = await addon().connectCommunicator(o.rank, o.world, o.rendezvous, timeoutMs);
    return new Communicator(raw, o.rank, o.world, timeoutMs);
  }

  /** In-place element-wise sum over the ranks. */
  allReduceSum(data: Float32Array): Promise<void> {
    return addon().commAllReduceSum(this.raw, data);
  }
}
