/**
 * What the Files and Batches HTTP routes do, behind one object: create, read and delete files;
 * create, read, list and cancel batches. Every call takes the caller's owner id (its API key id) and
 * another owner's object is "not found" (404), never "forbidden": ids leak nothing. Execution belongs
 * to the batch runner (runner.ts); this side only records batches and enqueues their expansion.
 */
import { randomBytes } from "node:crypto";
import type { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { batchErrors } from "./batch-errors.ts";
import type { RedisBatchStore, StoredBatch } from "./batch-store.ts";
import type { FileStorage } from "./file-storage.ts";
import type { ListOptions, RedisFileStore } from "./file-store.ts";
import { expandJobOptions, finalizeJobOptions } from "./jobs.ts";
import { endpointErrors, parseBatchInput } from "./jsonl.ts";
import { BATCH_ENDPOINTS, type BatchEndpoint, type BatchObject, type FileObject, type StoredFile, unixNow } from "./types.ts";

export interface BatchServiceDeps {
  files: RedisFileStore;
  batches: RedisBatchStore;
  storage: FileStorage;
  /** The control queue (expand, finalize). */
  control: Queue;
  /** Publishes cancellations to the runners (channel cancelChannel(prefix)). */
  redis: Redis;
  keyPrefix: string;
}

export interface CreateBatchInput {
  input_file_id: string;
  endpoint: string;
  completion_window: string;
  metadata?: Record<string, string> | null;
}

/** Runners abort a cancelled batch's in-flight lines when its id is published here. */
export const cancelChannel = (prefix: string) => `${prefix}batch-cancel`;

const COMPLETION_WINDOW_S = 24 * 3600;

export const newId = (prefix: string) => `${prefix}${randomBytes(12).toString("hex")}`;

export class BatchService {
  readonly #d: BatchServiceDeps;

  constructor(deps: BatchServiceDeps) {
    this.#d = deps;
  }

  async createFile(owner: string, filename: string, purpose: string, content: Buffer): Promise<FileObject> {
    if (purpose !== "batch")
      throw batchErrors.create("invalid_file", { detail: `purpose must be 'batch'; got '${purpose.slice(0, 64)}'` }, { param: "purpose" });
    const parsed = parseBatchInput(content.toString("utf8"));
    const first = parsed.errors[0];
    if (first) {
      const more = parsed.errors.length > 1 ? ` (and ${parsed.errors.length - 1} more problems)` : "";
      throw batchErrors.create("invalid_file", { detail: `${first.message}${more}` }, first.param ? { param: first.param } : {});
    }
    const f: StoredFile = {
      id: newId("file-"),
      object: "file",
      bytes: content.length,
      created_at: unixNow(),
      filename,
      purpose: "batch",
      status: "processed",
      expires_at: null,
      status_details: null,
      owner,
      lines: parsed.lines.length,
    };
    await this.#d.storage.put(f.id, content);
    await this.#d.files.create(f);
    return publicFile(f);
  }

  async getFile(owner: string, id: string): Promise<FileObject> {
    return publicFile(await this.#file(owner, id));
  }

  async listFiles(owner: string, o: ListOptions): Promise<{ data: FileObject[]; has_more: boolean }> {
    const page = await this.#d.files.list(owner, o);
    return { data: page.data.map(publicFile), has_more: page.has_more };
  }

  async fileContent(owner: string, id: string): Promise<Buffer> {
    const f = await this.#file(owner, id);
    const content = await this.#d.storage.get(f.id);
    if (!content) throw batchErrors.create("file_not_found", { id });
    return content;
  }

  async deleteFile(owner: string, id: string): Promise<{ id: string; object: "file"; deleted: true }> {
    if (!(await this.#d.files.delete(id, owner))) throw batchErrors.create("file_not_found", { id });
    await this.#d.storage.delete(id);
    return { id, object: "file", deleted: true };
  }

  async createBatch(owner: string, input: CreateBatchInput): Promise<BatchObject> {
    if (!(BATCH_ENDPOINTS as readonly string[]).includes(input.endpoint))
      throw batchErrors.create("invalid_batch", { detail: `endpoint must be one of ${BATCH_ENDPOINTS.join(", ")}` }, { param: "endpoint" });
    if (input.completion_window !== "24h")
      throw batchErrors.create("invalid_batch", { detail: "completion_window must be '24h'" }, { param: "completion_window" });
    const metadata = input.metadata ?? null;
    if (metadata && Object.keys(metadata).length > 16)
      throw batchErrors.create("invalid_batch", { detail: "metadata takes at most 16 pairs" }, { param: "metadata" });
    const file = await this.#d.files.get(input.input_file_id, owner);
    if (file?.purpose !== "batch") throw batchErrors.create("file_not_found", { id: input.input_file_id });
    const content = await this.#d.storage.get(file.id);
    if (!content) throw batchErrors.create("file_not_found", { id: input.input_file_id });
    const now = unixNow();
    const batch = await this.#d.batches.create(
      {
        id: newId("batch_"),
        endpoint: input.endpoint as BatchEndpoint,
        input_file_id: file.id,
        completion_window: "24h",
        created_at: now,
        expires_at: now + COMPLETION_WINDOW_S,
        metadata,
      },
      owner,
    );
    const parsed = parseBatchInput(content.toString("utf8"));
    const errors = [...parsed.errors, ...endpointErrors(parsed.lines, batch.endpoint)];
    if (errors.length > 0) {
      await this.#d.batches.transition(batch.id, "failed", { errors: JSON.stringify(errors) });
    } else {
      await this.#d.batches.setTotal(batch.id, parsed.lines.length);
      // The runner expands the batch into one job per line and moves it to in_progress.
      await this.#d.control.add("expand", { batchId: batch.id }, expandJobOptions(batch.id));
    }
    return this.getBatch(owner, batch.id);
  }

  async getBatch(owner: string, id: string): Promise<BatchObject> {
    return publicBatch(await this.#batch(owner, id));
  }

  async listBatches(owner: string, o: Pick<ListOptions, "limit" | "after">): Promise<{ data: BatchObject[]; has_more: boolean }> {
    const page = await this.#d.batches.list(owner, o);
    return { data: page.data.map(publicBatch), has_more: page.has_more };
  }

  /** in_progress (or validating) → cancelling; the runners abort in-flight lines and finalize it as cancelled. */
  async cancelBatch(owner: string, id: string): Promise<BatchObject> {
    const b = await this.#batch(owner, id);
    const { moved, was } = await this.#d.batches.transition(id, "cancelling", {}, ["validating", "in_progress"]);
    if (!moved && was !== "cancelling" && was !== "cancelled")
      throw batchErrors.create("batch_not_cancellable", { id, status: was ?? b.status });
    if (moved) {
      await this.#d.redis.publish(cancelChannel(this.#d.keyPrefix), id);
      await this.#d.control.add("finalize", { batchId: id }, finalizeJobOptions(id, 250));
    }
    return this.getBatch(owner, id);
  }

  async #file(owner: string, id: string): Promise<StoredFile> {
    const f = await this.#d.files.get(id, owner);
    if (!f) throw batchErrors.create("file_not_found", { id });
    return f;
  }

  async #batch(owner: string, id: string): Promise<StoredBatch> {
    const b = await this.#d.batches.get(id, owner);
    if (!b) throw batchErrors.create("batch_not_found", { id });
    return b;
  }
}

function publicFile(f: StoredFile): FileObject {
  const { owner: _owner, lines: _lines, ...rest } = f;
  return rest;
}

function publicBatch(b: StoredBatch): BatchObject {
  const { owner: _owner, token: _token, ...rest } = b;
  return rest;
}
