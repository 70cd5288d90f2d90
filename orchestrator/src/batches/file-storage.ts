/**
 * The file-content port of the Files API: files by id. Metadata (owner, name, purpose) lives in the
 * file store (file-store.ts), not here. Contract: put and write are atomic (a reader sees the whole
 * content or nothing) and idempotent for the same id and content; write consumes its source as it
 * goes (uploads are never held whole) and, when the source throws, stores nothing (no partial file,
 * no leftover) and rethrows; get of an unknown id is null, and so is read (which streams the content
 * instead of holding it: downloads); delete of an unknown id is a no-op.
 * Adapters: a local directory (local-file-storage.ts), in memory (tests).
 */
import { Readable } from "node:stream";

/** What a streamed write reads: chunks in order (a Node Readable, an async generator, an array). */
export type FileSource = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

export interface FileStorage {
  put(id: string, content: Buffer): Promise<void>;
  write(id: string, content: FileSource): Promise<void>;
  get(id: string): Promise<Buffer | null>;
  read(id: string): Promise<Readable | null>;
  delete(id: string): Promise<void>;
}

/** In-process storage (tests, single-process development). */
export class MemoryFileStorage implements FileStorage {
  readonly #files = new Map<string, Buffer>();

  async put(id: string, content: Buffer): Promise<void> {
    this.#files.set(id, Buffer.from(content));
  }

  async write(id: string, content: FileSource): Promise<void> {
    const chunks: Uint8Array[] = [];
    for await (const chunk of content) chunks.push(chunk);
    this.#files.set(id, Buffer.concat(chunks));
  }

  async get(id: string): Promise<Buffer | null> {
    return this.#files.get(id) ?? null;
  }

  async read(id: string): Promise<Readable | null> {
    const content = this.#files.get(id);
    return content ? Readable.from([content]) : null;
  }

  async delete(id: string): Promise<void> {
    this.#files.delete(id);
  }
}
