/**
 * Gateway telemetry through the real stack with a scripted worker: the GenAI span continues the HTTP
 * caller's traceparent, carries the usage the response reports, and its context reaches the worker in
 * gRPC metadata; the GenAI server metrics count the request on /metrics, and token counters count only
 * served requests (not a 400 context_length_exceeded nor a 404 model_not_found).
 */
import { startTelemetry } from "@expertmesh/common";
import { HarmonyTokenizer } from "@expertmesh/grammar/tokenizer";
import { ErrorKind } from "@expertmesh/proto/worker";
import { status } from "@grpc/grpc-js";
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace";
import { afterAll, expect, it } from "vitest";
import { startScriptedWorker } from "../testing/scripted-worker.ts";
import { startTestGateway } from "../testing/test-gateway.ts";

const exporter = new InMemorySpanExporter();
const telemetry = startTelemetry({ serviceName: "gateway-test", spanProcessors: [new SimpleSpanProcessor({ exporter })], env: {} });
const cleanup: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
  await telemetry.shutdown();
});

it("a chat completion is one GenAI span in the caller's trace, propagated to the worker, and counted in metrics", async () => {
  const tok = new HarmonyTokenizer();
  const worker = await startScriptedWorker([
    tok.encodeWithSpecials("<|channel|>analysis<|message|>Think.<|end|><|start|>assistant<|channel|>final<|message|>Hi there.<|return|>"),
  ]);
  const { base, close } = await startTestGateway({ address: worker.address, model: "gpt-oss-20b", tokenizer: tok });
  cleanup.push(
    () => worker.close(),
    () => close(),
  );

  const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
  const parentId = "00f067aa0ba902b7";
  const res = await fetch(`${base}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", traceparent: `00-${traceId}-${parentId}-01` },
    body: JSON.stringify({ model: "gpt-oss-20b", messages: [{ role: "user", content: "Hi" }], temperature: 0.5 }),
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { id: string; usage: { prompt_tokens: number; completion_tokens: number } };

  const span = exporter.getFinishedSpans().find((s) => s.name === "chat gpt-oss-20b");
  expect(span).toBeDefined();
  if (!span) return;
  expect(span.spanContext().traceId).toBe(traceId);
  expect(span.parentSpanContext?.spanId).toBe(parentId);
  expect(span.attributes["gen_ai.operation.name"]).toBe("chat");
  expect(span.attributes["gen_ai.request.model"]).toBe("gpt-oss-20b");
  expect(span.attributes["gen_ai.request.temperature"]).toBe(0.5);
  expect(span.attributes["gen_ai.response.id"]).toBe(body.id);
  expect(span.attributes["gen_ai.usage.input_tokens"]).toBe(body.usage.prompt_tokens);
  expect(span.attributes["gen_ai.usage.output_tokens"]).toBe(body.usage.completion_tokens);
  expect(span.attributes["gen_ai.response.finish_reasons"]).toEqual(["stop"]);
  // The worker got the gateway span as its parent.
  expect(worker.traceparents[0]).toBe(`00-${traceId}-${span.spanContext().spanId}-01`);

  const metrics = await (await fetch(`${base}/metrics`)).text();
  expect(metrics).toMatch(/gen_ai_server_time_to_first_token_seconds_count\{[^}]*gen_ai_request_model="gpt-oss-20b"[^}]*\} 1/);
  expect(metrics).toMatch(/gen_ai_server_request_duration_seconds_count\{[^}]*gen_ai_operation_name="chat"[^}]*\} 1/);
  const outputLine = metrics
    .split("\n")
    .find((l) => l.startsWith("expertmesh_gateway_tokens_total{") && l.includes('gen_ai_token_type="output"'));
  expect(outputLine?.endsWith(` ${body.usage.completion_tokens}`)).toBe(true);
});

/** The value of expertmesh_gateway_tokens_total for a token type (0 when the series does not exist). */
async function tokensTotal(base: string, type: "input" | "output"): Promise<number> {
  const line = (await (await fetch(`${base}/metrics`)).text())
    .split("\n")
    .find((l) => l.startsWith("expertmesh_gateway_tokens_total{") && l.includes(`gen_ai_token_type="${type}"`));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(" ") + 1));
}

it("tokens_total counts only served requests: a refused one (400 context, 404 model) adds no input tokens", async () => {
  const refusing = await startScriptedWorker([], {
    fail: { afterTokens: 0, code: status.OUT_OF_RANGE, kind: ErrorKind.ERROR_KIND_CONTEXT_LENGTH_EXCEEDED },
  });
  const { base, close } = await startTestGateway({ address: refusing.address, model: "gpt-oss-20b" });
  cleanup.push(
    () => refusing.close(),
    () => close(),
  );
  const chat = (model: string) =>
    fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model, messages: [{ role: "user", content: "a prompt of a few tokens" }] }),
    });

  const overContext = await chat("gpt-oss-20b");
  expect(overContext.status).toBe(400);
  expect(((await overContext.json()) as { error: { code: string } }).error.code).toBe("context_length_exceeded");
  const unknownModel = await chat("no-such-model");
  expect(unknownModel.status).toBe(404);
  expect(((await unknownModel.json()) as { error: { code: string } }).error.code).toBe("model_not_found");

  expect(await tokensTotal(base, "input")).toBe(0);
  expect(await tokensTotal(base, "output")).toBe(0);
});
