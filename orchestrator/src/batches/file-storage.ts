/**
 * The file-content port of the Files API: whole files by id. Metadata (owner, name, purpose) lives in
 * the file store (file-store.ts), not here. Contract: put is atomic (a reader sees the whole content or
 * nothing) and idempotent for the same id and content; get of an unknown id is null; delete of an
 * unknown id is a no-op. Adapters: a local directory (local-file-storage.ts), in memory (tests).
 */
export interface FileStorage {
  put(id: string, content: Buffer): Promise<void>;
  get(id: string): Promise<Buffer | null>;
  delete(id: string): Promise<void>;
}

/** In-process storage (tests, single-process development). */
export class MemoryFileStorage implements FileStorage {
  readonly #files = new Map<string, Buffer>();

  async put(id: string, content: Buffer): Promise<void> {
    this.#files.set(id, Buffer.from(content));
  }

  async get(id: string): Promise<Buffer | null> {
    return this.#files.get(id) ?? null;
  }

  async delete(id: string): Promise<void> {
    this.#files.delete(id);
  }
}
