/**
 * R9 with a real worker process: SIGTERM while 40 streams are in flight → new requests are refused,
 * every in-flight stream completes, and the process exits 0 within its grace period.
 */
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "@expertmesh/common/testing";
import { SHAPES } from "@expertmesh/kernels";
import { writeSyntheticCheckpoint } from "@expertmesh/kernels/checkpoint";
import { HealthCheckResponse_ServingStatus, HealthClient } from "@expertmesh/proto/health";
import { FinishReason, type GenerateResponse, WorkerClient } from "@expertmesh/proto/worker";
import { credentials, Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { expect, it } from "vitest";

it("R9: SIGTERM with 40 active streams drains them all and exits within the grace period", async () => {
  const dir = join(mkdtempSync(join(tmpdir(), "drain-model-")), "tiny");
  writeSyntheticCheckpoint({ shape: { ...SHAPES.tiny, vocab: 4096 }, out: dir, seed: 8 });
  const port = await freePort();
  const child = spawn(process.execPath, [new URL("./main.ts", import.meta.url).pathname], {
    env: {
      ...process.env,
      WORKER_PORT: String(port),
      WORKER_METRICS_PORT: "0",
      WORKER_MODEL_PATH: dir,
      WORKER_MAX_NUM_SEQS: "64",
      WORKER_SHUTDOWN_GRACE_MS: "20000",
      LOG_LEVEL: "warn",
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  const exited = new Promise<{ code: number | null; at: number }>((resolve) =>
    child.on("exit", (code) => resolve({ code, at: Date.now() })),
  );
  try {
    const address = `127.0.0.1:${port}`;
    const health = new HealthClient(address, credentials.createInsecure());
    const serving = () =>
      new Promise<number>((resolve) =>
        health.check({ service: "expertmesh.worker.v1.Worker" }, (err, res) => resolve(err ? -1 : res.status)),
      );
    await expect.poll(serving, { timeout: 20_000, interval: 100 }).toBe(HealthCheckResponse_ServingStatus.SERVING);

    const client = new WorkerClient(address, credentials.createInsecure());
    const streams = Array.from(
      { length: 40 },
      (_, i) =>
        new Promise<{ n: number; reason?: number; error?: ServiceError }>((resolve) => {
          let n = 0;
          let reason: number | undefined;
          const s = client.generate(
            {
              requestId: `d${i}`,
              promptTokenIds: [1 + i, 2, 3],
              stopTokenIds: [],
              maxTokens: 80,
              priority: 1,
              deadlineUnixMs: 0,
              clampMaxTokens: false,
              maxReasoningTokens: 0,
            },
            new Metadata(),
          );
          s.on("data", (e: GenerateResponse) => {
            n += e.tokens?.tokens.length ?? 0;
            if (e.finished) reason = e.finished.reason;
          });
          s.on("end", () => resolve({ n, reason }));
          s.on("error", (error: ServiceError) => resolve({ n, reason, error }));
        }),
    );
    await new Promise((r) => setTimeout(r, 100));
    const signalled = Date.now();
    child.kill("SIGTERM");
    // Once the drain has begun (health says so; on a loaded machine that is not a fixed delay), new work is refused.
    await expect.poll(serving, { timeout: 20_000, interval: 20 }).not.toBe(HealthCheckResponse_ServingStatus.SERVING);
    health.close();
    const refused = await new Promise<ServiceError | undefined>((resolve) => {
      const s = client.generate(
        {
          requestId: "late",
          promptTokenIds: [1],
          stopTokenIds: [],
          maxTokens: 2,
          priority: 1,
          deadlineUnixMs: 0,
          clampMaxTokens: false,
          maxReasoningTokens: 0,
        },
        new Metadata(),
      );
      s.on("data", () => {});
      s.on("end", () => resolve(undefined));
      s.on("error", resolve);
    });
    expect([status.UNAVAILABLE, status.CANCELLED]).toContain(refused?.code);
    const outcomes = await Promise.all(streams);
    expect(outcomes.filter((o) => o.error)).toEqual([]);
    for (const o of outcomes) {
      expect(o.reason).toBe(FinishReason.FINISH_REASON_LENGTH);
      expect(o.n).toBe(80);
    }
    client.close();
    const { code, at } = await exited;
    expect(code).toBe(0);
    expect(at - signalled).toBeLessThan(20_000);
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
  }
}, 60_000);
