/**
 * OpenTelemetry for Generate: the caller's W3C trace context is read from gRPC metadata (traceparent;
 * for GenerateStream from each start's trace_context),
 * and each request gets a span with the GenAI semantic-convention attributes; usage and finish reason are
 * set when the stream ends. No prompt or output content is recorded.
 */

import { FinishReason, type GenerateRequest, type Usage } from "@expertmesh/proto/worker";
import { Metadata } from "@grpc/grpc-js";
import { type Context, context, propagation, type Span, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import type { StepTracer } from "../engine/engine-observer.ts";

export const tracer = trace.getTracer("expertmesh-worker");

const metadataGetter = {
  keys: (md: Metadata) => Object.keys(md.getMap()),
  get: (md: Metadata, key: string) => {
    const values = md.get(key).map(String);
    return values.length > 0 ? values : undefined;
  },
};

const finishNames: Record<number, string> = {
  [FinishReason.FINISH_REASON_STOP]: "stop",
  [FinishReason.FINISH_REASON_LENGTH]: "length",
  [FinishReason.FINISH_REASON_ABORTED]: "aborted",
};

const mapGetter = {
  keys: (m: Record<string, string>) => Object.keys(m),
  get: (m: Record<string, string>, key: string) => m[key],
};

/** The caller's trace: from Generate's metadata, or from a GenerateStream start's trace_context map. */
export function callerContext(carrier: Metadata | Record<string, string>): Context {
  return carrier instanceof Metadata
    ? propagation.extract(context.active(), carrier, metadataGetter)
    : propagation.extract(context.active(), carrier, mapGetter);
}

export function startGenerateSpan(parent: Context, request: GenerateRequest, model: string, rank: number): Span {
  const s = request.sampling;
  return tracer.startSpan(
    `text_completion ${model}`,
    {
      kind: SpanKind.SERVER,
      attributes: {
        "gen_ai.operation.name": "text_completion",
        "gen_ai.provider.name": "expertmesh",
        "gen_ai.request.model": model,
        "gen_ai.request.max_tokens": request.maxTokens,
        "gen_ai.request.temperature": s?.temperature ?? 0,
        "gen_ai.request.top_p": s?.topP || 1,
        ...(s?.seed !== undefined ? { "gen_ai.request.seed": Number(s.seed) } : {}),
        "gen_ai.usage.input_tokens": request.promptTokenIds.length,
        "expertmesh.request_id": request.requestId,
        "expertmesh.rank": rank,
      },
    },
    parent,
  );
}

export function endGenerateSpan(span: Span, usage: Usage | undefined, reason: FinishReason | undefined, error?: Error): void {
  if (usage) {
    span.setAttribute("gen_ai.usage.input_tokens", usage.promptTokens);
    span.setAttribute("gen_ai.usage.output_tokens", usage.completionTokens);
  }
  if (reason !== undefined) span.setAttribute("gen_ai.response.finish_reasons", [finishNames[reason] ?? "unknown"]);
  if (error) {
    span.recordException(error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
  }
  span.end();
}

/** The batch engine's step tracer: a span per engine step, linked to the request spans it served. */
export const stepTracer: StepTracer = {
  startStep: (step) =>
    tracer.startSpan("engine.step", {
      attributes: { "expertmesh.rank": step.rank, "expertmesh.batch_size": step.sequences, "expertmesh.step_tokens": step.rows },
      links: step.links.map((context) => ({ context })),
    }),
};
