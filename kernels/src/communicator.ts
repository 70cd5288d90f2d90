/**
 * The communicator that joins the W ranks of an expert-parallel group: Gloo over TCP on CPU ranks, NCCL
 * on GPU ranks. Ranks meet at a rendezvous — `file:///dir` (local ranks: tests, the CLI) or
 * `redis://host:port/?prefix=...` (the cluster's Redis, as the orchestrator publishes it): Gloo ranks
 * exchange their addresses there; NCCL ranks the 128-byte unique id rank 0 made (or the caller passes
 * the id it published itself).
 *
 * Every rank calls the same collectives in the same order with the same sizes, one at a time. Every
 * collective is bounded by `timeoutMs` (the watchdog): a peer that hangs makes it reject with a
 * NativeError of status communicator_error and commFailure "timeout"; a peer that died, "peer_lost".
 * After a failure the communicator stays failed ("aborted"): the group is re-formed, not repaired.
 */
import { addon, type RawCommunicator, type RawCommunicatorOptions, type TypedArray } from "./addon.ts";

interface CommonOptions {
  rank: number;
  world: number;
  /** Bounds the join and every collective (default 30 s). */
  timeoutMs?: number;
}

export interface GlooOptions extends CommonOptions {
  transport?: "gloo";
  /** `file:///dir` or `redis://host:port/?prefix=<group key prefix>`. */
  rendezvous: string;
}

interface NcclCommon extends CommonOptions {
  transport: "nccl";
  /** This rank's CUDA device (default: the current one). */
  device?: number;
}

/** NCCL ranks given the id: the 128 bytes rank 0 got from Communicator.ncclUniqueId() and published. */
export interface NcclIdOptions extends NcclCommon {
  ncclUniqueId: Uint8Array;
}

/** NCCL ranks meeting where Gloo ranks would: rank 0 makes the id and sets it in the rendezvous store. */
export interface NcclRendezvousOptions extends NcclCommon {
  /** `file:///dir` or `redis://host:port/?prefix=<group key prefix>`. */
  rendezvous: string;
}

export type NcclOptions = NcclIdOptions | NcclRendezvousOptions;
export type CommunicatorOptions = GlooOptions | NcclOptions;

// redis://host:port, then an optional path and the ?prefix= query (the orchestrator writes it without the "/").
const RENDEZVOUS = /^(file:\/\/\/.+|redis:\/\/[^/?@]+(\/[^?]*)?(\?.*)?)$/;

function checkRendezvous(spec: unknown): string {
  if (typeof spec !== "string" || !RENDEZVOUS.test(spec))
    throw new RangeError(`rendezvous must be file:///dir or redis://host:port/?prefix=..., got '${spec}'`);
  return spec;
}

function checkTyped(name: string, v: unknown): asserts v is TypedArray {
  if (!ArrayBuffer.isView(v) || v instanceof DataView) throw new TypeError(`${name} must be a typed array`);
}

export class Communicator {
  readonly transport: "gloo" | "nccl";
  readonly rank: number;
  readonly world: number;
  readonly timeoutMs: number;
  /** @internal */
  readonly raw: RawCommunicator;

  private constructor(raw: RawCommunicator, o: RawCommunicatorOptions) {
    this.raw = raw;
    this.transport = o.transport;
    this.rank = o.rank;
    this.world = o.world;
    this.timeoutMs = o.timeoutMs;
  }

  /** Joins the group; resolves once every rank joined (rejects after the timeout). Never blocks the event loop. */
  static async connect(o: CommunicatorOptions): Promise<Communicator> {
    const timeoutMs = o.timeoutMs ?? 30_000;
    const transport = o.transport ?? "gloo";
    if (transport !== "gloo" && transport !== "nccl") throw new RangeError(`transport must be gloo or nccl, got '${transport}'`);
    if (!Number.isInteger(o.world) || o.world < 1) throw new RangeError(`world must be an integer >= 1, got ${o.world}`);
    if (!Number.isInteger(o.rank) || o.rank < 0 || o.rank >= o.world)
      throw new RangeError(`rank must be an integer in [0, ${o.world}), got ${o.rank}`);
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 2 ** 31 - 1)
      throw new RangeError(`timeoutMs must be a positive integer, got ${timeoutMs}`);
    const raw: RawCommunicatorOptions = { transport, rank: o.rank, world: o.world, timeoutMs };
    if (o.transport === "nccl") {
      if ("ncclUniqueId" in o) {
        if (!(o.ncclUniqueId instanceof Uint8Array) || o.ncclUniqueId.length !== 128)
          throw new TypeError("ncclUniqueId must be the 128-byte Uint8Array from Communicator.ncclUniqueId()");
        raw.ncclUniqueId = o.ncclUniqueId;
      } else raw.rendezvous = checkRendezvous(o.rendezvous);
      if (o.device !== undefined && (!Number.isInteger(o.device) || o.device < 0))
        throw new RangeError(`device must be a non-negative integer, got ${o.device}`);
      if (o.device !== undefined) raw.device = o.device;
    } else {
      raw.rendezvous = checkRendezvous(o.rendezvous);
    }
    return new Communicator(await addon().connectCommunicator(raw), raw);
  }

  /**
   * Joins a group whose ranks run on `backend`: on cuda:N through NCCL on device N (the model's
   * all-reduces take device buffers; Gloo takes host buffers only), elsewhere through Gloo.
   */
  static connectOn(backend: string, o: Omit<GlooOptions, "transport">): Promise<Communicator> {
    const gpu = /^cuda:(\d+)$/.exec(backend);
    return gpu ? Communicator.connect({ ...o, transport: "nccl", device: Number(gpu[1]) }) : Communicator.connect(o);
  }

  /** A fresh NCCL unique id (rank 0 makes it and publishes it to the other ranks). */
  static ncclUniqueId(): Promise<Uint8Array> {
    return addon().ncclUniqueId();
  }

  /** In-place element-wise sum over the ranks. */
  allReduceSum(data: Float32Array): Promise<void> {
    if (!(data instanceof Float32Array)) return Promise.reject(new TypeError("allReduceSum: data must be a Float32Array"));
    return addon().commAllReduceSum(this.raw, data);
  }

  /** Copies root's bytes of `data` into every other rank's `data` (same length on every rank). */
  broadcast(data: TypedArray, root: number): Promise<void> {
    checkTyped("broadcast: data", data);
    if (!Number.isInteger(root) || root < 0 || root >= this.world)
      return Promise.reject(new RangeError(`broadcast: root must be a rank in [0, ${this.world}), got ${root}`));
    return addon().commBroadcast(this.raw, data, root);
  }

  /** Every rank's bytes of `input`, concatenated by rank: resolves to world × input.byteLength bytes. */
  async allGather(input: TypedArray): Promise<Uint8Array> {
    checkTyped("allGather: input", input);
    const out = new Uint8Array(input.byteLength * this.world);
    await addon().commAllGather(this.raw, input, out);
    return out;
  }

  /** Resolves once every rank reached it. */
  barrier(): Promise<void> {
    return addon().commBarrier(this.raw);
  }

  /** Marks the communicator failed: later collectives reject at once (commFailure "aborted"). */
  abort(reason = "aborted"): void {
    addon().commAbort(this.raw, reason);
  }
}
