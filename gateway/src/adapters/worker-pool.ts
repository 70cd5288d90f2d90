/**
 * GenerationBackend over the worker roster: picks the ready worker serving the model with the fewest
 * outstanding tokens, streams Generate over gRPC (cancelled when the client goes away), and maps the
 * worker's typed errors to the gateway's catalogue.
 */
import type { Logger } from "@expertmesh/common";
import { MemberState } from "@expertmesh/proto/cluster";
import { ErrorDetail, ErrorKind, type GenerateRequest, type GenerateResponse, WorkerClient } from "@expertmesh/proto/worker";
import { credentials, Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { context, propagation } from "@opentelemetry/api";
import type { GenerationBackend } from "../domain/generation-backend.ts";
import type { WorkerDirectory } from "../domain/worker-directory.ts";
import { gatewayErrors } from "../errors.ts";

export class WorkerPool implements GenerationBackend {
  readonly #directory: WorkerDirectory;
  readonly #clients = new Map<string, WorkerClient>();
  readonly #outstanding = new Map<string, number>();
  readonly #log: Logger;

  constructor(directory: WorkerDirectory, log: Logger) {
    this.#directory = directory;
    this.#log = log.child({ component: "worker-pool" });
  }

  models(): string[] {
    return [
      ...new Set(
        this.#directory
          .members()
          .filter((m) => m.state === MemberState.MEMBER_STATE_READY)
          .map((m) => m.model),
      ),
    ].sort();
  }

  #pick(model: string): string {
    const ready = this.#directory.members().filter((m) => m.model === model && m.state === MemberState.MEMBER_STATE_READY);
    if (ready.length === 0) {
      if (this.#directory.members().some((m) => m.model === model)) {
        throw gatewayErrors.create(
          "service_unavailable",
          { reason: `no ready worker serves '${model}' right now` },
          { retryAfterMs: 2000 },
        );
      }
      throw gatewayErrors.create("model_not_found", { model }, { param: "model" });
    }
    ready.sort((a, b) => (this.#outstanding.get(a.address) ?? 0) - (this.#outstanding.get(b.address) ?? 0));
    return (ready[0] as (typeof ready)[number]).address;
  }

  #client(address: string): WorkerClient {
    let c = this.#clients.get(address);
    if (!c) {
      c = new WorkerClient(address, credentials.createInsecure());
      this.#clients.set(address, c);
    }
    return c;
  }

  async *generate(model: string, request: GenerateRequest, signal: AbortSignal): AsyncIterable<GenerateResponse> {
    const address = this.#pick(model);
    const weight = request.promptTokenIds.length + request.maxTokens;
    this.#outstanding.set(address, (this.#outstanding.get(address) ?? 0) + weight);
    const metadata = new Metadata();
    propagation.inject(context.active(), metadata, { set: (md, k, v) => md.set(k, v) });
    const stream = this.#client(address).generate(request, metadata);
    const onAbort = () => stream.cancel();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      for await (const event of stream as AsyncIterable<GenerateResponse>) yield event;
    } catch (err) {
      throw this.#mapError(err as ServiceError);
    } finally {
      signal.removeEventListener("abort", onAbort);
      this.#outstanding.set(address, (this.#outstanding.get(address) ?? weight) - weight);
    }
  }

  #mapError(err: ServiceError) {
    const raw = err.metadata?.get("expertmesh-error-bin")[0];
    const detail = raw instanceof Buffer ? ErrorDetail.decode(raw) : undefined;
    const message = detail?.message ?? err.details ?? err.message;
    switch (detail?.kind) {
      case ErrorKind.ERROR_KIND_CONTEXT_LENGTH_EXCEEDED:
        return gatewayErrors.create("context_length_exceeded", { detail: message }, { param: "messages" });
      case ErrorKind.ERROR_KIND_INVALID_ARGUMENT:
        return gatewayErrors.create("invalid_request_error", { detail: message });
      case ErrorKind.ERROR_KIND_QUEUE_FULL:
        return gatewayErrors.create("overloaded", { reason: message }, { retryAfterMs: detail.retryAfterMs || 1000 });
      case ErrorKind.ERROR_KIND_DEADLINE_EXCEEDED:
        return gatewayErrors.create("timeout", { detail: message });
      default:
        if (err.code === status.UNAVAILABLE || detail?.kind === ErrorKind.ERROR_KIND_NOT_READY) {
          return gatewayErrors.create("service_unavailable", { reason: message }, { retryAfterMs: detail?.retryAfterMs || 1000 });
        }
        this.#log.error({ code: err.code, err: message }, "worker failed");
        return gatewayErrors.create("upstream_error", { detail: message });
    }
  }

  close(): void {
    for (const c of this.#clients.values()) c.close();
  }
}
