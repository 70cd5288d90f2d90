/**
 * Batch input validation, line by line: every problem names its 1-based line and field, as OpenAI's
 * batch `errors` do. Pure code; nothing here reads files or Redis (jsonl-stream.ts checks a stream with it).
 */
import { createHash } from "node:crypto";
import { BATCH_ENDPOINTS, type BatchEndpoint, type BatchError, type FileEndpoints, type InputLine } from "./types.ts";

export const MAX_BATCH_LINES = 50_000;
export const MAX_CUSTOM_ID_LENGTH = 512;
/** At most this many problems are reported for one file. */
const MAX_ERRORS = 20;

export interface ParsedInput {
  lines: InputLine[];
  errors: BatchError[];
}

export const problem = (line: number, param: string | null, message: string, code = "invalid_request"): BatchError => ({
  code,
  message: `Line ${line}: ${message}`,
  param,
  line,
});

/** Parses and checks a batch input file; `lines` holds the valid ones, `errors` every problem found. */
export function parseBatchInput(text: string): ParsedInput {
  const lines: InputLine[] = [];
  const errors: BatchError[] = [];
  const checker = new BatchLineChecker();
  const rows = text.split("\n");
  if (rows.at(-1) === "") rows.pop();
  for (let i = 0; i < rows.length && errors.length < MAX_ERRORS; i++) {
    const checked = checker.check(rows[i] as string, i + 1);
    if ("error" in checked) errors.push(checked.error);
    else lines.push(checked.line);
  }
  if (rows.length === 0) errors.push(emptyFile());
  if (rows.length > MAX_BATCH_LINES)
    errors.push(tooManyLines(`The file has ${rows.length} requests; a batch takes at most ${MAX_BATCH_LINES}.`));
  return { lines, errors };
}

export const emptyFile = (): BatchError => ({ code: "empty_file", message: "The file has no requests.", param: null, line: null });

export const tooManyLines = (message: string): BatchError => ({ code: "too_many_requests", message, param: null, line: null });

/**
 * Checks one line at a time, in order (1-based numbers), remembering custom_ids to reject duplicates.
 * Long ids are remembered by digest, so a file's worth of them stays small however long they are.
 */
export class BatchLineChecker {
  readonly #seen = new Set<string>();

  check(row: string, n: number): { line: InputLine } | { error: BatchError } {
    const raw = row.endsWith("\r") ? row.slice(0, -1) : row;
    if (raw.trim() === "") return { error: problem(n, null, "empty line; every line must be one JSON request object", "empty_line") };
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (err) {
      return { error: problem(n, null, `not valid JSON (${(err as Error).message})`, "invalid_json_line") };
    }
    const checked = checkLine(value, n);
    if ("error" in checked) return checked;
    const id = checked.line.custom_id;
    const key = id.length > 64 ? createHash("sha256").update(id).digest("base64") : id;
    if (this.#seen.has(key)) return { error: problem(n, "custom_id", `duplicate custom_id '${id}'`, "duplicate_custom_id") };
    this.#seen.add(key);
    return checked;
  }
}

function checkLine(v: unknown, n: number): { line: InputLine } | { error: BatchError } {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return { error: problem(n, null, "must be a JSON object") };
  const o = v as Record<string, unknown>;
  if (typeof o.custom_id !== "string" || o.custom_id.length === 0)
    return { error: problem(n, "custom_id", "custom_id must be a non-empty string") };
  if (o.custom_id.length > MAX_CUSTOM_ID_LENGTH)
    return { error: problem(n, "custom_id", `custom_id is longer than ${MAX_CUSTOM_ID_LENGTH} characters`) };
  if (o.method !== "POST") return { error: problem(n, "method", `method must be "POST"`) };
  if (typeof o.url !== "string" || !(BATCH_ENDPOINTS as readonly string[]).includes(o.url))
    return { error: problem(n, "url", `url must be one of ${BATCH_ENDPOINTS.join(", ")}`) };
  if (typeof o.body !== "object" || o.body === null || Array.isArray(o.body))
    return { error: problem(n, "body", "body must be a JSON object") };
  const body = o.body as Record<string, unknown>;
  if (typeof body.model !== "string" || body.model.length === 0)
    return { error: problem(n, "body.model", "body.model must be a non-empty string") };
  if (body.stream === true) return { error: problem(n, "body.stream", "streaming is not supported in a batch") };
  return { line: { custom_id: o.custom_id, method: "POST", url: o.url as BatchEndpoint, body } };
}

/** The errors of using these lines for a batch on `endpoint` (every line must target it). */
export function endpointErrors(lines: readonly InputLine[], endpoint: BatchEndpoint): BatchError[] {
  const errors: BatchError[] = [];
  lines.forEach((l, i) => {
    if (l.url !== endpoint && errors.length < MAX_ERRORS) errors.push(mismatched(i + 1, l.url, endpoint));
  });
  return errors;
}

/** endpointErrors from what an upload recorded (the first line of each endpoint): one error per other endpoint. */
export function recordedEndpointErrors(endpoints: FileEndpoints, endpoint: BatchEndpoint): BatchError[] {
  return (Object.entries(endpoints) as [BatchEndpoint, number][])
    .filter(([url]) => url !== endpoint)
    .sort((a, b) => a[1] - b[1])
    .map(([url, line]) => mismatched(line, url, endpoint));
}

const mismatched = (line: number, url: string, endpoint: BatchEndpoint) =>
  problem(line, "url", `url '${url}' does not match the batch endpoint '${endpoint}'`, "mismatched_url");
