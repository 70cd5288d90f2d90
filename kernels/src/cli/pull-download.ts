/**
 * One file of `expertmesh pull`: N ranged GETs written in place into `<file>.part`, resumable through
 * `<file>.part.json` (each range's bytes on disk), then hashed against the hub's id before the rename.
 */
import { createHash } from "node:crypto";
import { createReadStream, existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { fetchRange, type HubTarget, offline, PullError, type RemoteFile } from "./pull-hub.ts";

export interface DownloadOptions {
  connections: number;
  /** Ranges are at least this long, so small files take one request. */
  minRangeBytes: number;
  /** Called with each block of bytes written. */
  onBytes: (n: number) => void;
}

interface Range {
  start: number;
  end: number;
  done: number;
}

interface PartState {
  size: number;
  id: string;
  ranges: Range[];
}

const ATTEMPTS_PER_RANGE = 4;
const STATE_FLUSH_MS = 500;

/** The id a file is checked against: the LFS sha256, or the git blob sha1 for small files. */
export function contentId(f: RemoteFile): string {
  return f.sha256 ? `sha256:${f.sha256}` : f.gitOid ? `git:${f.gitOid}` : `size:${f.size}`;
}

/** Hashes a local file the way contentId names it. */
export async function hashFile(path: string, f: RemoteFile): Promise<string> {
  if (!f.sha256 && !f.gitOid) return `size:${f.size}`;
  const h = createHash(f.sha256 ? "sha256" : "sha1");
  if (!f.sha256) h.update(`blob ${f.size}\0`);
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return `${f.sha256 ? "sha256" : "git"}:${h.digest("hex")}`;
}

function freshRanges(size: number, o: DownloadOptions): Range[] {
  const n = Math.max(1, Math.min(o.connections, Math.floor(size / o.minRangeBytes)));
  const step = Math.ceil(size / n);
  const ranges: Range[] = [];
  for (let start = 0; start < size; start += step) ranges.push({ start, end: Math.min(size, start + step), done: 0 });
  return ranges;
}

/** The saved state of an interrupted download of this same content, if its part file is still there. */
function loadState(part: string, f: RemoteFile): PartState | undefined {
  if (!existsSync(part) || !existsSync(`${part}.json`)) return undefined;
  try {
    const s = JSON.parse(readFileSync(`${part}.json`, "utf8")) as PartState;
    return s.size === f.size && s.id === contentId(f) && Array.isArray(s.ranges) ? s : undefined;
  } catch {
    return undefined;
  }
}

function saveState(part: string, s: PartState): void {
  // Written then renamed: a kill mid-write leaves the previous state, never a torn one.
  writeFileSync(`${part}.json.tmp`, JSON.stringify(s));
  renameSync(`${part}.json.tmp`, `${part}.json`);
}

async function fetchInto(t: HubTarget, f: RemoteFile, fh: FileHandle, r: Range, o: DownloadOptions): Promise<void> {
  const body = await fetchRange(t, f.path, r.start + r.done, r.end);
  for await (const chunk of body) {
    const take = Math.min(chunk.byteLength, r.end - r.start - r.done);
    await fh.write(chunk, 0, take, r.start + r.done);
    r.done += take;
    o.onBytes(take);
    // A server that ignored the end of the range sends on; leaving the loop cancels the rest.
    if (r.start + r.done >= r.end) break;
  }
  if (r.start + r.done < r.end) throw new Error(`connection closed at byte ${r.start + r.done} of ${f.path}`);
}

/** One range to its end, retrying a dropped connection; a hub that stays unreachable ends in PullError(2). */
async function fetchRangeWithRetries(t: HubTarget, f: RemoteFile, fh: FileHandle, r: Range, o: DownloadOptions) {
  for (let attempt = 1; ; attempt++) {
    try {
      await fetchInto(t, f, fh, r, o);
      return;
    } catch (err) {
      if (err instanceof PullError && err.exitCode !== 2) throw err;
      if (attempt >= ATTEMPTS_PER_RANGE) throw offline(t.endpoint, err) ?? err;
      await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
    }
  }
}

/** Downloads f into dest.part (resuming), returns the content id found; renames to dest only when it matches. */
export async function downloadFile(t: HubTarget, f: RemoteFile, dest: string, o: DownloadOptions): Promise<string> {
  const part = `${dest}.part`;
  const state = loadState(part, f) ?? { size: f.size, id: contentId(f), ranges: freshRanges(f.size, o) };
  const fh = await open(part, existsSync(part) && state.ranges.some((r) => r.done > 0) ? "r+" : "w+");
  let dirty = true;
  const flush = setInterval(() => {
    if (dirty) saveState(part, state);
    dirty = false;
  }, STATE_FLUSH_MS);
  try {
    await fh.truncate(f.size);
    const tracked: DownloadOptions = {
      ...o,
      onBytes: (n) => {
        dirty = true;
        o.onBytes(n);
      },
    };
    await Promise.all(state.ranges.filter((r) => r.done < r.end - r.start).map((r) => fetchRangeWithRetries(t, f, fh, r, tracked)));
  } finally {
    clearInterval(flush);
    await fh.close();
    saveState(part, state);
  }
  const got = await hashFile(part, f);
  rmSync(`${part}.json`, { force: true });
  if (got !== contentId(f)) {
    rmSync(part, { force: true });
    return got;
  }
  renameSync(part, dest);
  return got;
}
