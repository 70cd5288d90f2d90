/**
 * FileStorage on a local directory (the default): one file per id, streamed to a temporary name and
 * renamed, so a crash never leaves a half-written file under its id. Several processes on one machine
 * (gateway and batch runners) may share the directory; across machines mount a shared volume.
 */
import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { FileSource, FileStorage } from "./file-storage.ts";

const ID = /^[A-Za-z0-9_-]{1,128}$/;

export class LocalFileStorage implements FileStorage {
  readonly #dir: string;
  #ready: Promise<unknown> | undefined;

  constructor(dir: string) {
    this.#dir = dir;
  }

  async put(id: string, content: Buffer): Promise<void> {
    await this.write(id, [content]);
  }

  async write(id: string, content: FileSource): Promise<void> {
    const path = this.#path(id);
    await this.#mkdir();
    const tmp = join(this.#dir, `.${id}.${randomBytes(6).toString("hex")}.tmp`);
    try {
      // pipeline keeps to the file's pace: the source is read no faster than the disk takes it.
      await pipeline(content, createWriteStream(tmp, { flush: true }));
      await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  async get(id: string): Promise<Buffer | null> {
    try {
      return await readFile(this.#path(id));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw err;
    }
  }

  async read(id: string): Promise<Readable | null> {
    const path = this.#path(id);
    // Opened before it is returned: an unknown id is null here, not an error in the middle of a download.
    const handle = await open(path, "r").catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return null;
      throw err;
    });
    return handle ? handle.createReadStream() : null;
  }

  async delete(id: string): Promise<void> {
    await rm(this.#path(id), { force: true });
  }

  #path(id: string): string {
    // Ids are ours, but they arrive in URLs: never let one name a path outside the directory.
    if (!ID.test(id)) throw new Error(`invalid file id '${id.slice(0, 64)}'`);
    return join(this.#dir, id);
  }

  #mkdir(): Promise<unknown> {
    this.#ready ??= mkdir(this.#dir, { recursive: true });
    return this.#ready;
  }
}
