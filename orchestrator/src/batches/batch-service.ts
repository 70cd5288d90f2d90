/**
 * What the Files and Batches HTTP routes do, behind one object: create, read and delete files;
 * create, read, list and cancel batches. Every call takes the caller's owner id (its API key id) and
 * another owner's object is "not found" (404), never "forbidden": ids leak nothing. Execution belongs
 * to the batch runner (runner.ts); this side only records batches and enqueues their expansion.
 */
import { randomBytes } from "node:crypto";
import type { Readable } from "node:stream";
import type { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { batchErrors } from "./batch-errors.ts";
import type { RedisBatchStore, StoredBatch } from "./batch-store.ts";
import type { FileSource, FileStorage } from "./file-storage.ts";
import type { ListOptions, RedisFileStore } from "./file-store.ts";
import { expandJobOptions, finalizeJobOptions } from "./jobs.ts";
import { endpointErrors, parseBatchInput, recordedEndpointErrors } from "./jsonl.ts";
import { BatchInputScanner, type ScanLimits, scanned } from "./jsonl-stream.ts";
import {
  BATCH_ENDPOINTS,
  type BatchEndpoint,
  type BatchError,
  type BatchObject,
  type FileEndpoints,
  type FileObject,
  type StoredFile,
  unixNow,
} from "./types.ts";

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
/** A batch line is a request body for the gateway: longer than its body limit it could never run. */
const DEFAULT_MAX_LINE_BYTES = 8 * 1024 * 1024;
const MAX_FILENAME_BYTES = 255;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses.
const UNSAFE_IN_NAME = /[\u0000-\u001f\u007f/\\]/;

/** An upload stored by receiveFile and not yet a File. */
export interface Upload {
  id: string;
  filename: string;
  bytes: number;
  lines: number;
  endpoints: FileEndpoints;
}

/** Throws unless `purpose` is one an upload may have (only batch input is uploaded). */
export function checkPurpose(purpose: string): void {
  if (purpose !== "batch")
    throw batchErrors.create("invalid_file", { detail: `purpose must be 'batch'; got '${purpose.slice(0, 64)}'` }, { param: "purpose" });
}

/**
 * Throws unless `name` is a plain file name: it is stored and shown back (and a client may save
 * downloads under it), so no control characters (NUL included), no path separators, no "." or "..".
 */
export function checkFilename(name: string): void {
  const bad = Buffer.byteLength(name) > MAX_FILENAME_BYTES || name === "." || name === ".." || UNSAFE_IN_NAME.test(name);
  if (bad)
    throw batchErrors.create(
      "invalid_file",
      { detail: `The file name must be at most ${MAX_FILENAME_BYTES} bytes, with no control characters or path separators.` },
      { param: "file" },
    );
}

export const newId = (prefix: string) => `${prefix}${randomBytes(12).toString("hex")}`;

export class BatchService {
  readonly #d: BatchServiceDeps;

  constructor(deps: BatchServiceDeps) {
    this.#d = deps;
  }

  /**
   * Creates a batch input file from `content` read once, as it arrives (see receiveFile): the purpose
   * is checked before any of it is read.
   */
  async createFile(owner: string, filename: string, purpose: string, content: Uint8Array | FileSource): Promise<FileObject> {
    checkPurpose(purpose);
    const upload = await this.receiveFile(filename, content instanceof Uint8Array ? [content] : content);
    return this.commitFile(owner, purpose, upload);
  }

  /**
   * Streams an upload into storage under a new id while checking it as batch input line by line
   * (jsonl-stream.ts): the first problem (or a failing source) stops the reading, leaves nothing
   * stored, and throws. What it returns is not a File yet (nobody can see it): commitFile makes it
   * one, discardFile drops it.
   */
  async receiveFile(filename: string, content: FileSource, limits: Partial<ScanLimits> = {}): Promise<Upload> {
    checkFilename(filename);
    const scanner = new BatchInputScanner({ ...limits, maxLineBytes: limits.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES });
    const id = newId("file-");
    await this.#d.storage.write(id, scanned(content, scanner));
    return { id, filename, bytes: scanner.bytes, lines: scanner.lines, endpoints: scanner.endpoints };
  }

  /** The received upload becomes `owner`'s File; with a wrong purpose it is discarded instead. */
  async commitFile(owner: string, purpose: string, upload: Upload): Promise<FileObject> {
    try {
      checkPurpose(purpose);
    } catch (err) {
      await this.discardFile(upload);
      throw err;
    }
    const f: StoredFile = {
      id: upload.id,
      object: "file",
      bytes: upload.bytes,
      created_at: unixNow(),
      filename: upload.filename,
      purpose: "batch",
      status: "processed",
      expires_at: null,
      status_details: null,
      owner,
      lines: upload.lines,
      endpoints: upload.endpoints,
    };
    await this.#d.files.create(f);
    return publicFile(f);
  }

  async discardFile(upload: Upload): Promise<void> {
    await this.#d.storage.delete(upload.id);
  }

  async getFile(owner: string, id: string): Promise<FileObject> {
    return publicFile(await this.#file(owner, id));
  }

  async listFiles(owner: string, o: ListOptions): Promise<{ data: FileObject[]; has_more: boolean }> {
    const page = await this.#d.files.list(owner, o);
    return { data: page.data.map(publicFile), has_more: page.has_more };
  }

  /** The content as a stream: a download is never held whole. */
  async fileContent(owner: string, id: string): Promise<Readable> {
    const f = await this.#file(owner, id);
    const content = await this.#d.storage.read(f.id);
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
    const endpoint = input.endpoint as BatchEndpoint;
    const checked = file.endpoints
      ? { total: file.lines, errors: recordedEndpointErrors(file.endpoints, endpoint) }
      : await this.#checkStoredInput(file.id, endpoint);
    const now = unixNow();
    const batch = await this.#d.batches.create(
      {
        id: newId("batch_"),
        endpoint,
        input_file_id: file.id,
        completion_window: "24h",
        created_at: now,
        expires_at: now + COMPLETION_WINDOW_S,
        metadata,
      },
      owner,
    );
    if (checked.errors.length > 0) {
      await this.#d.batches.transition(batch.id, "failed", { errors: JSON.stringify(checked.errors) });
    } else {
      await this.#d.batches.setTotal(batch.id, checked.total);
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

  /** A file stored before uploads recorded their endpoints: read and checked whole. */
  async #checkStoredInput(id: string, endpoint: BatchEndpoint): Promise<{ total: number; errors: BatchError[] }> {
    const content = await this.#d.storage.get(id);
    if (!content) throw batchErrors.create("file_not_found", { id });
    const parsed = parseBatchInput(content.toString("utf8"));
    return { total: parsed.lines.length, errors: [...parsed.errors, ...endpointErrors(parsed.lines, endpoint)] };
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
  const { owner: _owner, lines: _lines, endpoints: _endpoints, ...rest } = f;
  return rest;
}

function publicBatch(b: StoredBatch): BatchObject {
  const { owner: _owner, token: _token, ...rest } = b;
  return rest;
}
