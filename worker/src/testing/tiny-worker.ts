/**
 * A real worker in this process serving a tiny synthetic checkpoint (vocabulary 4096 by default, 64 KV blocks, 8
 * sequences), or any checkpoint directory, with a gRPC client to it: what the worker's model-backed transport
 * tests share.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "@expertmesh/common";
import { SHAPES } from "@expertmesh/kernels";
import { writeSyntheticCheckpoint } from "@expertmesh/kernels/checkpoint";
import { WorkerClient } from "@expertmesh/proto/worker";
import { credentials } from "@grpc/grpc-js";
import { type RunningWorker, startWorker } from "../app.ts";
import { loadWorkerConfig } from "../config.ts";

export interface TinyWorker {
  /** The checkpoint directory. */
  dir: string;
  worker: RunningWorker;
  client: WorkerClient;
  close(): Promise<void>;
}

/**
 * `alter` may change the checkpoint before the worker loads it (broken weights, a hostile config).
 * `vocab`: the model's vocabulary (the full o200k_harmony one for constrained decoding).
 */
export async function startTinyWorker(seed = 5, alter?: (dir: string) => void, vocab = 4096): Promise<TinyWorker> {
  const dir = join(mkdtempSync(join(tmpdir(), "worker-model-")), "tiny");
  writeSyntheticCheckpoint({ shape: { ...SHAPES.tiny, vocab }, out: dir, seed });
  alter?.(dir);
  return startModelWorker(dir);
}

/** A real worker in this process serving the checkpoint in `dir`; `env` adds to or overrides its settings. */
export async function startModelWorker(dir: string, env: Record<string, string> = {}): Promise<TinyWorker> {
  const config = loadWorkerConfig({
    WORKER_PORT: "0",
    WORKER_METRICS_PORT: "0",
    WORKER_MODEL_PATH: dir,
    WORKER_MODEL_NAME: "tiny",
    WORKER_KV_NUM_BLOCKS: "64",
    WORKER_MAX_NUM_SEQS: "8",
    ...env,
  });
  const worker = await startWorker(config, createLogger("worker-test", "silent"));
  const client = new WorkerClient(worker.address, credentials.createInsecure());
  return {
    dir,
    worker,
    client,
    close: async () => {
      client.close();
      await worker.close();
    },
  };
}
