/**
 * Opens this worker's rank of an expert-parallel group on the native engine. A group of one is the
 * plain serving engine (no communicator). Larger groups need the lockstep step broadcast of the native
 * communicator; until the engine exposes it this factory refuses them with a clear error.
 */
import type { Logger, Registry } from "@expertmesh/common";
import type { GroupAssignment } from "@expertmesh/proto/cluster";
import type { WorkerConfig } from "../config.ts";
import { loadNativeEngine } from "../engine/load-native-engine.ts";
import type { GroupEngineFactory, OpenedGroupEngine } from "./group-agent.ts";

export class NativeGroupFactory implements GroupEngineFactory {
  readonly #config: WorkerConfig;
  readonly #log: Logger;
  readonly #registry: Registry | undefined;

  constructor(config: WorkerConfig, log: Logger, registry?: Registry) {
    this.#config = config;
    this.#log = log;
    this.#registry = registry;
  }

  async open(a: GroupAssignment): Promise<OpenedGroupEngine> {
    if (!this.#config.model.path) throw new Error("no checkpoint configured (set WORKER_MODEL_PATH)");
    if (a.model !== this.#config.model.name)
      throw new Error(`assigned model '${a.model}' but this worker serves '${this.#config.model.name}'`);
    if (a.worldSize !== 1)
      throw new Error(`groups of ${a.worldSize} ranks need the native lockstep communicator, not built into this engine yet`);
    const engine = await loadNativeEngine({ ...this.#config, rank: 0, world_size: 1 }, this.#log, this.#registry);
    return {
      engine,
      close: async () => engine.stop(`group ${a.groupId} was dissolved`),
    };
  }
}
