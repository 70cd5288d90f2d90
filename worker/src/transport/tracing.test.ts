/**
 * R21 (worker side): the caller's trace continues into the worker. A Generate carrying a W3C traceparent
 * produces a server span in that trace with GenAI attributes equal to the response's usage, and the
 * engine steps that served it link back to it.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger, startTelemetry } from "@expertmesh/common";
import { SHAPES } from "@expertmesh/kernels";
import { writeSyntheticCheckpoint } from "@expertmesh/kernels/checkpoint";
import { type GenerateResponse, WorkerClient } from "@expertmesh/proto/worker";
import { credentials, Metadata } from "@grpc/grpc-js";
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type RunningWorker, startWorker } from "../app.ts";
import { loadWorkerConfig } from "../config.ts";

const exporter = new InMemorySpanExporter();
const telemetry = startTelemetry({ serviceName: "worker-test", spanProcessors: [new SimpleSpanProcessor({ exporter })], env: {} });
let worker: RunningWorker;
let client: WorkerClient;

beforeAll(async () => {
  const dir = join(mkdtempSync(join(tmpdir(), "trace-model-")), "tiny");
  writeSyntheticCheckpoint({ shape: { ...SHAPES.tiny, vocab: 4096 }, out: dir, seed: 3 });
  const config = loadWorkerConfig({ WORKER_PORT: "0", WORKER_METRICS_PORT: "0", WORKER_MODEL_PATH: dir, WORKER_MODEL_NAME: "tiny" });
  worker = await startWorker(config, createLogger("trace-test", "silent"));
  client = new WorkerClient(worker.address, credentials.createInsecure());
});
afterAll(async () => {
  client.close();
  await worker.close();
  await telemetry.shutdown();
});

it("continues the caller's trace with GenAI attributes equal to the usage, and links steps to it", async () => {
  const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
  const parentId = "00f067aa0ba902b7";
  const md = new Metadata();
  md.set("traceparent", `00-${traceId}-${parentId}-01`);
  const events: GenerateResponse[] = [];
  await new Promise<void>((resolve, reject) => {
    const stream = client.generate(
      {
        requestId: "t1",
        promptTokenIds: [1, 2, 3, 4],
        stopTokenIds: [],
        maxTokens: 5,
        priority: 1,
        deadlineUnixMs: 0,
        clampMaxTokens: false,
        maxReasoningTokens: 0,
        sampling: {
          temperature: 0.7,
          topP: 0.9,
          topK: 0,
          minP: 0,
          presencePenalty: 0,
          frequencyPenalty: 0,
          repetitionPenalty: 0,
          seed: 11,
          logitBias: {},
          topLogprobs: 0,
          logprobs: false,
        },
      },
      md,
    );
    stream.on("data", (e: GenerateResponse) => events.push(e));
    stream.on("end", resolve);
    stream.on("error", reject);
  });
  const usage = events.at(-1)?.finished?.usage;
  await expect.poll(() => exporter.getFinishedSpans().some((s) => s.name === "text_completion tiny")).toBe(true);
  const spans = exporter.getFinishedSpans();
  const request = spans.find((s) => s.name === "text_completion tiny");
  expect(request?.spanContext().traceId).toBe(traceId);
  expect(request?.parentSpanContext?.spanId).toBe(parentId);
  expect(request?.attributes).toMatchObject({
    "gen_ai.operation.name": "text_completion",
    "gen_ai.request.model": "tiny",
    "gen_ai.request.max_tokens": 5,
    "gen_ai.usage.input_tokens": usage?.promptTokens,
    "gen_ai.usage.output_tokens": usage?.completionTokens,
    "gen_ai.response.finish_reasons": ["length"],
  });
  const steps = spans.filter((s) => s.name === "engine.step" && s.links.some((l) => l.context.spanId === request?.spanContext().spanId));
  expect(steps.length).toBe(usage?.completionTokens);
  expect(steps[0]?.attributes).toMatchObject({ "expertmesh.batch_size": 1, "expertmesh.step_tokens": 4, "expertmesh.rank": 0 });
});
