/**
 * One Generate call over gRPC, collected: every token event, the finish, or the error it ended with —
 * what the worker's model-backed tests compare; and the request they send, built from what each test
 * sets over neutral defaults.
 */
import type { Finished, GeneratedToken, GenerateRequest, GenerateResponse, SamplingParams, WorkerClient } from "@expertmesh/proto/worker";
import { Metadata, type ServiceError } from "@grpc/grpc-js";

export interface Generation {
  tokens: GeneratedToken[];
  finished?: Finished;
  error?: ServiceError;
}

/** Resolves when the stream ends, with an error or without; never rejects. */
export function collectGeneration(client: WorkerClient, request: GenerateRequest): Promise<Generation> {
  const out: Generation = { tokens: [] };
  const stream = client.generate(request, new Metadata());
  return new Promise((resolve) => {
    stream.on("data", (e: GenerateResponse) => {
      if (e.tokens) out.tokens.push(...e.tokens.tokens);
      if (e.finished) out.finished = e.finished;
    });
    stream.on("end", () => resolve(out));
    stream.on("error", (error: ServiceError) => resolve({ ...out, error }));
  });
}

/**
 * A GenerateRequest with everything a test does not set neutral: no stop tokens, online priority, no
 * deadline, no clamp, no reasoning budget; sampling greedy from seed 1 with no penalty, bias or logprobs.
 * `sampling` fields go over the sampling defaults, `fields` over the request's (a whole `sampling` there
 * replaces them).
 */
export function generateRequest(
  fields: Pick<GenerateRequest, "requestId" | "promptTokenIds"> & Partial<GenerateRequest>,
  sampling: Partial<SamplingParams> = {},
): GenerateRequest {
  return {
    sampling: {
      temperature: 0,
      topP: 1,
      topK: 0,
      minP: 0,
      presencePenalty: 0,
      frequencyPenalty: 0,
      repetitionPenalty: 1,
      seed: 1,
      logitBias: {},
      topLogprobs: 0,
      logprobs: false,
      ...sampling,
    },
    stopTokenIds: [],
    maxTokens: 16,
    priority: 1,
    deadlineUnixMs: 0,
    clampMaxTokens: false,
    maxReasoningTokens: 0,
    ...fields,
  };
}
