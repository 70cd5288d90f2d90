/**
 * A real gateway on an ephemeral port in front of given worker addresses (static directory, real gRPC
 * pool): what the gateway's route tests and bench/gateway share.
 */
import { createLogger, createMetricsRegistry } from "@expertmesh/common";
import { HarmonyTokenizer, Special } from "@expertmesh/grammar/tokenizer";
import { Accelerator, type Member, MemberState } from "@expertmesh/proto/cluster";
import type { FastifyInstance } from "fastify";
import { WorkerPool, workerPoolOptions } from "../adapters/worker-pool.ts";
import { perProcessConfig } from "../cluster/per-process.ts";
import { GatewayConfigSchema } from "../config.ts";
import { StaticWorkerDirectory, type WorkerDirectory } from "../domain/worker-directory.ts";
import { createServer, type GatewayDeps } from "../server.ts";

/** A ready single-rank CPU member serving `model` at `address`. */
export function readyMember(address: string, model: string, workerId = "w1"): Member {
  return {
    workerId,
    address,
    model,
    accelerator: Accelerator.ACCELERATOR_CPU,
    state: MemberState.MEMBER_STATE_READY,
    groupId: "",
    rank: 0,
    worldSize: 1,
    registeredUnixMs: Date.now(),
    numExperts: 0,
    wantsGroup: false,
    device: "cpu",
    precision: "default",
  };
}

export interface TestGatewayOptions {
  /** Worker gRPC address (a static directory of that one worker), unless `directory` is given. */
  address?: string;
  /** Where the workers are listed (e.g. an OrchestratorDirectory); closed with the gateway. */
  directory?: WorkerDirectory;
  model: string;
  /** Raw gateway config (validated by the real schema). */
  config?: Record<string, unknown>;
  tokenizer?: HarmonyTokenizer;
  /** Extra dependencies (store, admission, limiter, keys). */
  deps?: Partial<Pick<GatewayDeps, "responses" | "admission" | "limiter" | "keys" | "batches" | "prompts" | "bodyParser" | "background">>;
  /** Called before listening (e.g. to add hooks). */
  beforeListen?: (app: FastifyInstance) => void;
  /** Listen on this port (default 0: any free one); children of a multi-process gateway share one. */
  port?: number;
  /** Run with one process's share of the in-process limits (cluster/per-process.ts), as main.ts's children do. */
  perProcess?: boolean;
}

export interface TestGateway {
  /** http://127.0.0.1:PORT */
  base: string;
  app: FastifyInstance;
  close(): Promise<void>;
}

export async function startTestGateway(o: TestGatewayOptions): Promise<TestGateway> {
  const directory = o.directory ?? new StaticWorkerDirectory([readyMember(o.address ?? "", o.model)]);
  const log = createLogger("test-gateway", "silent");
  const parsed = GatewayConfigSchema.parse(o.config ?? {});
  const config = o.perProcess ? perProcessConfig(parsed) : parsed;
  const registry = createMetricsRegistry("test-gateway");
  const pool = new WorkerPool(directory, log, { ...workerPoolOptions(config.router), pinOnTokenIds: [Special.call], registry });
  const app = createServer({
    config,
    log,
    directory,
    registry,
    backend: pool,
    tokenizer: o.tokenizer ?? new HarmonyTokenizer(),
    ...o.deps,
  });
  o.beforeListen?.(app);
  const base = await app.listen({ host: "127.0.0.1", port: o.port ?? 0 });
  return {
    base,
    app,
    close: async () => {
      await app.close();
      pool.close();
      directory.close();
    },
  };
}
