/**
 * Telemetry around any GenerationBackend: one OTel span per generation named after the GenAI semantic
 * conventions ("{operation} {model}", kind CLIENT toward the engine group, continuing the HTTP caller's
 * traceparent and carried on to the worker in gRPC metadata by the pool), and the GenAI server metrics
 * (request duration, time to first token, time per output token) plus token counters of served generations, by model.
 */
import { Counter, Histogram, type Registry } from "@expertmesh/common";
import { FinishReason, type GenerateRequest, type GenerateResponse } from "@expertmesh/proto/worker";
import { type Context, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { type GenerationBackend, relay } from "../domain/generation-backend.ts";

export type GenAiOperation = "chat" | "text_completion";

const finishNames: Record<number, string> = {
  [FinishReason.FINISH_REASON_STOP]: "stop",
  [FinishReason.FINISH_REASON_LENGTH]: "length",
  [FinishReason.FINISH_REASON_ABORTED]: "abort",
};

export interface GenAiMetrics {
  duration: Histogram<"gen_ai_operation_name" | "gen_ai_request_model" | "error_type">;
  ttft: Histogram<"gen_ai_operation_name" | "gen_ai_request_model">;
  tpot: Histogram<"gen_ai_operation_name" | "gen_ai_request_model">;
  tokens: Counter<"gen_ai_request_model" | "gen_ai_token_type">;
}

export function genAiMetrics(registry: Registry): GenAiMetrics {
  const latency = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
  return {
    duration: new Histogram({
      name: "gen_ai_server_request_duration_seconds",
      help: "GenAI server request duration (gen_ai.server.request.duration), admission to last token",
      labelNames: ["gen_ai_operation_name", "gen_ai_request_model", "error_type"] as const,
      buckets: latency,
      registers: [registry],
    }),
    ttft: new Histogram({
      name: "gen_ai_server_time_to_first_token_seconds",
      help: "Time to the first generated token (gen_ai.server.time_to_first_token)",
      labelNames: ["gen_ai_operation_name", "gen_ai_request_model"] as const,
      buckets: latency,
      registers: [registry],
    }),
    tpot: new Histogram({
      name: "gen_ai_server_time_per_output_token_seconds",
      help: "Time per output token after the first (gen_ai.server.time_per_output_token)",
      labelNames: ["gen_ai_operation_name", "gen_ai_request_model"] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: [registry],
    }),
    tokens: new Counter({
      name: "expertmesh_gateway_tokens_total",
      help: "Tokens through the gateway by model and type (input, output)",
      labelNames: ["gen_ai_request_model", "gen_ai_token_type"] as const,
      registers: [registry],
    }),
  };
}

export class ObservedBackend implements GenerationBackend {
  readonly #inner: GenerationBackend;
  readonly #operation: GenAiOperation;
  readonly #metrics: GenAiMetrics;

  constructor(inner: GenerationBackend, operation: GenAiOperation, metrics: GenAiMetrics) {
    this.#inner = inner;
    this.#operation = operation;
    this.#metrics = metrics;
  }

  generate(model: string, request: GenerateRequest, signal: AbortSignal, parent: Context = ROOT_CONTEXT): AsyncIterable<GenerateResponse> {
    const labels = { gen_ai_operation_name: this.#operation, gen_ai_request_model: model };
    let span: Span | undefined;
    let t0 = 0;
    let first = 0;
    let last = 0;
    let output = 0;
    // A refusal (unknown model, over the context, queue full) ends before any event: its prompt was
    // never prefilled, so only a generation the engine answered counts its input tokens.
    let served = false;
    return relay(
      () => {
        span = this.#startSpan(model, request, parent);
        t0 = performance.now();
        // The span's context goes down the chain explicitly: the pool carries it to the worker.
        return this.#inner.generate(model, request, signal, trace.setSpan(parent, span))[Symbol.asyncIterator]();
      },
      {
        onEvent: (e) => {
          served = true;
          const n = e.tokens?.tokens.length ?? 0;
          if (n > 0) {
            last = performance.now();
            if (output === 0) first = last;
            output += n;
          }
          if (e.finished) span?.setAttribute("gen_ai.response.finish_reasons", [finishNames[e.finished.reason] ?? "unknown"]);
        },
        onEnd: (err) => {
          let errorType = "";
          if (err !== undefined) {
            errorType = (err as { code?: string }).code ?? (err as Error).name ?? "error";
            span?.setAttribute("error.type", errorType);
            span?.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
          }
          span?.setAttribute("gen_ai.usage.output_tokens", output);
          span?.end();
          if (!span) return; // closed before it started: nothing ran
          this.#metrics.duration.observe(errorType ? { ...labels, error_type: errorType } : labels, (performance.now() - t0) / 1000);
          if (output > 0) this.#metrics.ttft.observe(labels, (first - t0) / 1000);
          if (output > 1) this.#metrics.tpot.observe(labels, (last - first) / 1000 / (output - 1));
          if (served) this.#metrics.tokens.inc({ gen_ai_request_model: model, gen_ai_token_type: "input" }, request.promptTokenIds.length);
          if (output > 0) this.#metrics.tokens.inc({ gen_ai_request_model: model, gen_ai_token_type: "output" }, output);
        },
      },
    );
  }

  #startSpan(model: string, request: GenerateRequest, parent: Context): Span {
    const s = request.sampling;
    return trace.getTracer("expertmesh-gateway").startSpan(
      `${this.#operation} ${model}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          "gen_ai.operation.name": this.#operation,
          "gen_ai.provider.name": "expertmesh",
          "gen_ai.request.model": model,
          "gen_ai.request.max_tokens": request.maxTokens,
          "gen_ai.request.temperature": s?.temperature ?? 1,
          "gen_ai.request.top_p": s?.topP ?? 1,
          ...(s?.topK ? { "gen_ai.request.top_k": s.topK } : {}),
          ...(s?.seed !== undefined ? { "gen_ai.request.seed": Number(s.seed) } : {}),
          "gen_ai.response.id": request.requestId,
          "gen_ai.usage.input_tokens": request.promptTokenIds.length,
        },
      },
      parent,
    );
  }

  models(): string[] {
    return this.#inner.models();
  }
}
