import { describe, expect, it } from "vitest";
import { AppError, defineErrorCatalogue, GrpcCode } from "./errors.ts";

const errors = defineErrorCatalogue({
  model_not_found: {
    http: 404,
    grpc: GrpcCode.NOT_FOUND,
    type: "not_found_error",
    retryable: false,
    message: (p: { model: string }) => `The model '${p.model}' does not exist`,
  },
  queue_full: {
    http: 429,
    grpc: GrpcCode.RESOURCE_EXHAUSTED,
    type: "rate_limit_error",
    retryable: true,
    message: (p: { depth: number }) => `queue full (${p.depth} waiting)`,
  },
});

describe("error catalogue", () => {
  it("builds typed errors with the OpenAI body", () => {
    const err = errors.create("model_not_found", { model: "gpt-x" }, { param: "model" });
    expect(err).toBeInstanceOf(AppError);
    expect(err.http).toBe(404);
    expect(err.grpc).toBe(GrpcCode.NOT_FOUND);
    expect(err.toOpenAi()).toEqual({
      error: { message: "The model 'gpt-x' does not exist", type: "not_found_error", param: "model", code: "model_not_found" },
    });
    expect(errors.is(err)).toBe(true);
    expect(errors.is(new Error("x"))).toBe(false);
  });

  it("carries retry hints", () => {
    const err = errors.create("queue_full", { depth: 7 }, { retryAfterMs: 250 });
    expect(err.retryable).toBe(true);
    expect(err.retryAfterMs).toBe(250);
    expect(err.message).toBe("queue full (7 waiting)");
  });
});
