/**
 * The OpenAI Files and Batches objects as ExpertMesh stores and returns them, and the line formats of
 * batch input, output and error files. Plain data only: stores, queues and HTTP live elsewhere.
 */

/** Endpoints a batch may target (every line of a batch targets the batch's endpoint). */
export const BATCH_ENDPOINTS = ["/v1/chat/completions", "/v1/completions", "/v1/responses"] as const;
export type BatchEndpoint = (typeof BATCH_ENDPOINTS)[number];

export type FilePurpose = "batch" | "batch_output";

/** GET /v1/files/{id}. `owner` is ours (the API key id) and never leaves the gateway. */
export interface FileObject {
  id: string;
  object: "file";
  bytes: number;
  created_at: number;
  filename: string;
  purpose: FilePurpose;
  status: "processed";
  expires_at: number | null;
  status_details: null;
}

export interface StoredFile extends FileObject {
  owner: string;
  /** Input files: the validated line count (0 for outputs). */
  lines: number;
  /**
   * Input files: the first line targeting each endpoint the lines use, so that a batch is checked
   * against its endpoint without reading the file (absent on files stored before it was kept).
   */
  endpoints?: FileEndpoints;
}

export type FileEndpoints = Partial<Record<BatchEndpoint, number>>;

/** OpenAI's batch statuses; the transitions are in batch-store.ts. */
export type BatchStatus = "validating" | "failed" | "in_progress" | "finalizing" | "completed" | "expired" | "cancelling" | "cancelled";

export interface RequestCounts {
  total: number;
  completed: number;
  failed: number;
}

export interface BatchError {
  code: string;
  message: string;
  param: string | null;
  line: number | null;
}

export interface BatchObject {
  id: string;
  object: "batch";
  endpoint: BatchEndpoint;
  errors: { object: "list"; data: BatchError[] } | null;
  input_file_id: string;
  completion_window: "24h";
  status: BatchStatus;
  output_file_id: string | null;
  error_file_id: string | null;
  created_at: number;
  in_progress_at: number | null;
  expires_at: number;
  finalizing_at: number | null;
  completed_at: number | null;
  failed_at: number | null;
  expired_at: number | null;
  cancelling_at: number | null;
  cancelled_at: number | null;
  request_counts: RequestCounts;
  metadata: Record<string, string> | null;
}

/** One line of a batch input file. */
export interface InputLine {
  custom_id: string;
  method: "POST";
  url: BatchEndpoint;
  body: Record<string, unknown>;
}

/**
 * One line of the output file (a 2xx answer) or of the error file (an HTTP error answer, or `response`
 * null with `error` set when the line never got an answer: cancelled, expired, retries exhausted).
 */
export interface ResultLine {
  id: string;
  custom_id: string;
  response: { status_code: number; request_id: string; body: unknown } | null;
  error: { code: string; message: string } | null;
}

export type ResultKind = "completed" | "failed";

/** Seconds since the epoch, as OpenAI's timestamps. */
export function unixNow(): number {
  return Math.floor(Date.now() / 1000);
}
