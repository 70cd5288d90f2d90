/**
 * One Generate call over gRPC, collected: every token event, the finish, or the error it ended with —
 * what the worker's model-backed tests compare.
 */
import type { Finished, GeneratedToken, GenerateRequest, GenerateResponse, WorkerClient } from "@expertmesh/proto/worker";
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
