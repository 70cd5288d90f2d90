/**
 * Checks batch input as it arrives, chunk by chunk, so an upload is never held whole: lines may split
 * across chunks, a line longer than the cap or a line past the count cap is refused as soon as it is
 * seen, and the first problem ends the scan (an uploader learns the first bad line, not all of them).
 * It holds at most one partial line. It only checks; what stores the bytes is the caller's business.
 */
import { batchErrors } from "./batch-errors.ts";
import { BatchLineChecker, emptyFile, MAX_BATCH_LINES, problem, tooManyLines } from "./jsonl.ts";
import type { BatchError, FileEndpoints } from "./types.ts";

export interface ScanLimits {
  /** Longest line in bytes (without its newline). */
  maxLineBytes: number;
  /** Most lines; MAX_BATCH_LINES when not given. */
  maxLines?: number;
}

const NEWLINE = 0x0a;

export class BatchInputScanner {
  readonly #checker = new BatchLineChecker();
  readonly #maxLineBytes: number;
  readonly #maxLines: number;
  /** The pieces of the line not yet ended by a newline. */
  #partial: Buffer[] = [];
  #partialBytes = 0;
  #lines = 0;
  #bytes = 0;
  readonly #endpoints: FileEndpoints = {};

  constructor(limits: ScanLimits) {
    this.#maxLineBytes = limits.maxLineBytes;
    this.#maxLines = limits.maxLines ?? MAX_BATCH_LINES;
  }

  /** Lines seen so far (all of them, once end() returned). */
  get lines(): number {
    return this.#lines;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** The first line targeting each endpoint seen. */
  get endpoints(): FileEndpoints {
    return { ...this.#endpoints };
  }

  /** Checks the lines `chunk` completes; throws invalid_file (an AppError) at the first problem. */
  push(chunk: Uint8Array): void {
    const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.#bytes += buf.length;
    let start = 0;
    for (let nl = buf.indexOf(NEWLINE); nl >= 0; nl = buf.indexOf(NEWLINE, start)) {
      this.#hold(buf.subarray(start, nl));
      this.#endLine();
      start = nl + 1;
    }
    if (start < buf.length) this.#hold(buf.subarray(start));
  }

  /** The input is over: checks a last line without a newline; throws on a problem or an empty file. */
  end(): void {
    if (this.#partialBytes > 0) this.#endLine();
    if (this.#lines === 0) fail(emptyFile());
  }

  #hold(piece: Buffer): void {
    if (this.#partialBytes + piece.length > this.#maxLineBytes)
      fail(problem(this.#lines + 1, null, `longer than ${this.#maxLineBytes} bytes`, "line_too_long"));
    if (piece.length === 0) return;
    this.#partial.push(piece);
    this.#partialBytes += piece.length;
  }

  #endLine(): void {
    const n = ++this.#lines;
    if (n > this.#maxLines)
      fail(tooManyLines(`The file has more than ${this.#maxLines} requests; a batch takes at most ${this.#maxLines}.`));
    const text = this.#partial.length === 1 ? (this.#partial[0] as Buffer).toString("utf8") : Buffer.concat(this.#partial).toString("utf8");
    this.#partial = [];
    this.#partialBytes = 0;
    const checked = this.#checker.check(text, n);
    if ("error" in checked) fail(checked.error);
    this.#endpoints[checked.line.url] ??= n;
  }
}

/** `source` passed through unchanged while `scanner` checks it; throws at the first problem. */
export async function* scanned(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  scanner: BatchInputScanner,
): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) {
    scanner.push(chunk);
    yield chunk;
  }
  scanner.end();
}

function fail(e: BatchError): never {
  throw batchErrors.create("invalid_file", { detail: e.message }, e.param ? { param: e.param } : {});
}
