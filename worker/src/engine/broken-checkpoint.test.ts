/**
 * Broken checkpoints (#20 item 9): weights whose logits come out NaN end each affected generation with
 * a typed ENGINE_FAILURE (gRPC INTERNAL) while the worker keeps serving; a config.json value out of its
 * domain stops the worker at startup with the loader's message naming the key and the value.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SHAPES } from "@expertmesh/kernels";
import { fillBf16Tensor, writeSyntheticCheckpoint } from "@expertmesh/kernels/checkpoint";
import { ErrorKind, type InfoResponse } from "@expertmesh/proto/worker";
import { Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTinyWorker, type TinyWorker } from "../testing/tiny-worker.ts";
import { errorDetailOf } from "../transport/grpc-errors.ts";

/** Resolves with the stream's error (undefined when it ended normally) and the tokens it got. */
function run(tiny: TinyWorker, requestId: string, prompt = [5, 6, 7]): Promise<{ error?: ServiceError; tokens: number }> {
  const stream = tiny.client.generate(
    {
      requestId,
      promptTokenIds: prompt,
      stopTokenIds: [],
      maxTokens: 4,
      priority: 1,
      deadlineUnixMs: 0,
      clampMaxTokens: false,
      maxReasoningTokens: 0,
    },
    new Metadata(),
  );
  let tokens = 0;
  return new Promise((resolve) => {
    stream.on("data", (e: { tokens?: { tokens: unknown[] } }) => {
      tokens += e.tokens?.tokens.length ?? 0;
    });
    stream.on("end", () => resolve({ tokens }));
    stream.on("error", (error: ServiceError) => resolve({ error, tokens }));
  });
}

function expectNumericFailure(r: { error?: ServiceError; tokens: number }): void {
  expect(r.tokens).toBe(0);
  expect(r.error?.code).toBe(status.INTERNAL);
  expect(errorDetailOf(r.error as ServiceError)?.kind).toBe(ErrorKind.ERROR_KIND_ENGINE_FAILURE);
  expect(r.error?.details).toMatch(/engine failure: engine_step: sequence 0 row \d+ has a non-finite logit \(NaN at token \d+\)/);
}

describe("weights that make NaN logits", () => {
  let tiny: TinyWorker;
  beforeAll(async () => {
    tiny = await startTinyWorker(5, (dir) => fillBf16Tensor(dir, "model.norm.weight", 0x7fc0));
  });
  afterAll(() => tiny.close());

  it("each generation ends with a typed engine_failure naming the non-finite logit, no token, and the worker keeps serving", async () => {
    for (const id of ["nan-1", "nan-2"]) expectNumericFailure(await run(tiny, id));
    const info = await new Promise<InfoResponse>((resolve, reject) => tiny.client.info({}, (e, r) => (e ? reject(e) : resolve(r))));
    expect(info.capacity?.kvBlocksFree).toBe(info.capacity?.kvBlocksTotal);
  });
});

describe("one NaN embedding row", () => {
  let tiny: TinyWorker;
  // Token 100's embedding is NaN (hidden 64): only sequences holding it get NaN logits.
  beforeAll(async () => {
    tiny = await startTinyWorker(5, (dir) => fillBf16Tensor(dir, "model.embed_tokens.weight", 0x7fc0, [100 * 64, 101 * 64]));
  });
  afterAll(() => tiny.close());

  it("fails the request holding the token, and the next requests are served normally", async () => {
    expectNumericFailure(await run(tiny, "poisoned", [5, 100, 7]));
    for (const id of ["after-1", "after-2"]) expect(await run(tiny, id)).toEqual({ tokens: 4 });
  });
});

it.each([
  ["alone", {}],
  // Placed workers load their shard later: the config is checked before registering.
  ["orchestrated", { WORKER_GROUP_MODE: "orchestrated", WORKER_ORCHESTRATOR_ADDRESS: "127.0.0.1:1" }],
])(
  "%s: a config.json value out of its domain stops the worker at startup with the loader's message",
  async (_mode, env) => {
    const dir = join(mkdtempSync(join(tmpdir(), "worker-bad-config-")), "tiny");
    writeSyntheticCheckpoint({ shape: { ...SHAPES.tiny, vocab: 4096 }, out: dir, seed: 5 });
    const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
    writeFileSync(join(dir, "config.json"), JSON.stringify({ ...config, rope_theta: -1 }));
    const child = spawn(process.execPath, [new URL("../main.ts", import.meta.url).pathname], {
      env: { ...process.env, WORKER_PORT: "0", WORKER_METRICS_PORT: "0", WORKER_MODEL_PATH: dir, LOG_LEVEL: "info", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (b: Buffer) => {
      output += b.toString();
    });
    child.stderr.on("data", (b: Buffer) => {
      output += b.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    expect(code).toBe(1);
    expect(output).toContain(`startup failed: ${join(dir, "config.json")}: 'rope_theta' must be greater than 1 (got -1)`);
    expect(output).not.toContain("triggerUncaughtException");
  },
  60_000,
);
