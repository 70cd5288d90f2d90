/**
 * Model: a gpt-oss checkpoint loaded by the native engine (memory-mapped; MXFP4 experts stay packed),
 * or one rank's share of it. Loading runs off the event loop.
 */
import { statSync } from "node:fs";
import { addon, type ModelConfigInfo, type RawModel, type ShardInfo } from "./addon.ts";

export type { ModelConfigInfo, ShardInfo };

export interface LoadOptions {
  /** This rank and the group size (expert parallelism). Default 0 of 1. */
  rank?: number;
  world?: number;
  /** Explicit expert placement for this rank; default: a contiguous split. */
  experts?: readonly number[];
}

function checkInt(name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer in [${min}, ${max}], got ${value}`);
  }
}

function checkDir(dir: string): void {
  if (typeof dir !== "string" || dir.length === 0) throw new TypeError("model directory must be a non-empty string");
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir) throw new TypeError(`model directory ${dir} does not exist or is not a directory`);
}

export class Model {
  readonly dir: string;
  readonly config: ModelConfigInfo;
  readonly shard: ShardInfo;
  /** @internal */
  readonly raw: RawModel;

  private constructor(dir: string, raw: RawModel) {
    this.dir = dir;
    this.raw = raw;
    this.config = raw.config;
    this.shard = raw.shard;
  }

  /**
   * The checkpoint's config.json, validated exactly as load() validates it but without opening a
   * tensor: what a worker checks before offering to serve (NativeError invalid_checkpoint naming the
   * key and the value).
   */
  static readConfig(dir: string): ModelConfigInfo {
    checkDir(dir);
    return addon().readModelConfig(dir);
  }

  static async load(dir: string, options: LoadOptions = {}): Promise<Model> {
    checkDir(dir);
    const world = options.world ?? 1;
    const rank = options.rank ?? 0;
    checkInt("world", world, 1, 1024);
    checkInt("rank", rank, 0, world - 1);
    let experts: Int32Array | null = null;
    if (options.experts) {
      for (const [i, e] of options.experts.entries()) checkInt(`experts[${i}]`, e, 0, 65535);
      experts = Int32Array.from(options.experts);
    }
    return new Model(dir, await addon().loadModel(dir, rank, world, experts));
  }
}
