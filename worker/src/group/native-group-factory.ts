/**
 * Opens this worker's rank of an expert-parallel group on the native engine. A group of one is the
 * plain serving engine. In a larger group every rank loads its shard (its attention heads and the
 * experts of the placement) and joins the communicator at the orchestrator's rendezvous (Gloo, or NCCL
 * when the worker runs on a GPU); rank 0 serves Generate and broadcasts each step's plan (plus a
 * keepalive while idle, so the followers' waits stay under the watchdog), the other ranks follow those
 * steps in lockstep. A communicator failure — a peer
 * died or hung — ends in-flight requests with a retryable error and reports the group lost.
 */
import type { Logger, Registry } from "@expertmesh/common";
import { Communicator } from "@expertmesh/kernels";
import type { GroupAssignment } from "@expertmesh/proto/cluster";
import type { WorkerConfig } from "../config.ts";
import type { StepTracer } from "../engine/engine-observer.ts";
import { batchEngineOf, createNativeEngine, type EngineReporting, loadModelShard } from "../engine/load-native-engine.ts";
import { createEngineMetrics } from "../engine/metrics.ts";
import { NoModelEngine } from "../engine/no-model-engine.ts";
import type { GroupEngineFactory, OpenedGroupEngine } from "./group-agent.ts";

export class NativeGroupFactory implements GroupEngineFactory {
  readonly #config: WorkerConfig;
  readonly #log: Logger;
  readonly #reporting: EngineReporting;

  constructor(config: WorkerConfig, log: Logger, registry?: Registry, tracer?: StepTracer) {
    this.#config = config;
    this.#log = log.child({ component: "group-engine" });
    // One set of metrics for the worker's life: groups come and go, the series stay.
    this.#reporting = { metrics: registry ? createEngineMetrics(registry, config.model.name) : undefined, tracer };
  }

  async open(a: GroupAssignment, onLost: (reason: string) => void): Promise<OpenedGroupEngine> {
    const config = this.#config;
    if (!config.model.path) throw new Error("no checkpoint configured (set WORKER_MODEL_PATH)");
    if (a.model !== config.model.name) throw new Error(`assigned model '${a.model}' but this worker serves '${config.model.name}'`);
    if (a.worldSize === 1) {
      const batch = batchEngineOf(createNativeEngine(await loadModelShard(config, this.#log), config), config, this.#reporting);
      return { engine: batch, close: async () => batch.stop(`group ${a.groupId} was dissolved`) };
    }
    // Load first (the slow part), then meet the peers, so that the ranks reach the rendezvous together.
    const model = await loadModelShard(config, this.#log, { rank: a.rank, world: a.worldSize, experts: a.experts });
    // On a GPU the ranks meet over NCCL (rank 0's unique id goes through the same rendezvous).
    const communicator = await Communicator.connectOn(config.device, {
      rank: a.rank,
      world: a.worldSize,
      rendezvous: a.rendezvous,
      timeoutMs: config.group.comm_timeout_ms,
    });
    const engine = createNativeEngine(model, config, communicator);
    this.#log.info({ groupId: a.groupId, rank: a.rank, world: a.worldSize }, "joined the group's communicator");
    let closing = false;
    const lost = (reason: string) => {
      if (!closing) onLost(reason);
    };

    if (a.rank === 0) {
      const batch = batchEngineOf(engine, config, this.#reporting, lost);
      const keepalive = setInterval(
        () => engine.keepalive().catch((err: Error) => lost(`keepalive failed: ${err.message}`)),
        Math.max(100, Math.floor(config.group.comm_timeout_ms / 3)),
      );
      keepalive.unref();
      return {
        engine: batch,
        close: async () => {
          closing = true;
          clearInterval(keepalive);
          batch.stop(`group ${a.groupId} was dissolved`);
          await engine.stopFollowers().catch(() => {}); // followers that are gone already: nothing to stop
        },
      };
    }
    const following = engine.follow().then(
      () => lost("the leader stopped this group"),
      (err: Error) => lost(err.message),
    );
    const idle = new NoModelEngine(
      config.model.name,
      {
        blockSize: config.kv.block_size,
        blocks: config.kv.num_blocks,
        maxNumSeqs: config.scheduler.max_num_seqs,
        maxTokensPerStep: config.scheduler.max_tokens_per_step,
      },
      `rank ${a.rank} of group ${a.groupId} follows rank 0 (send requests to rank 0)`,
      engine.backend,
    );
    return {
      engine: idle,
      close: async () => {
        closing = true;
        // A live leader stops us; a dead one makes follow() fail within the watchdog timeout.
        await Promise.race([following, new Promise((r) => setTimeout(r, config.group.comm_timeout_ms + 1_000).unref())]);
      },
    };
  }
}
