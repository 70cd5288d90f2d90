/**
 * Finishing a batch, idempotently: every line without a result gets one (batch_cancelled /
 * batch_expired when the batch was cancelled or expired), the output and error files are written in
 * input order under ids derived from the batch id, and the batch moves to its terminal status. Running
 * it twice, or concurrently on two runners, writes the same files and moves the status once.
 */
import { createHash } from "node:crypto";
import type { RedisBatchStore, StoredBatch } from "./batch-store.ts";
import type { FileStorage } from "./file-storage.ts";
import type { RedisFileStore } from "./file-store.ts";
import { parseBatchInput } from "./jsonl.ts";
import type { BatchStatus, InputLine, ResultLine } from "./types.ts";
import { unixNow } from "./types.ts";

export interface FinalizeDeps {
  batches: RedisBatchStore;
  files: RedisFileStore;
  storage: FileStorage;
}

/** The output line id of a request (stable: a retried line keeps it). */
export function resultLineId(batchId: string, customId: string): string {
  return `batch_req_${createHash("sha256").update(`${batchId}\n${customId}`).digest("hex").slice(0, 24)}`;
}

export function unexecuted(batchId: string, customId: string, code: string, message: string): ResultLine {
  return { id: resultLineId(batchId, customId), custom_id: customId, response: null, error: { code, message } };
}

/** The input lines of a batch (already validated at upload). */
export async function batchLines(d: FinalizeDeps, b: StoredBatch): Promise<InputLine[]> {
  const content = await d.storage.get(b.input_file_id);
  if (!content) throw new Error(`batch ${b.id}: input file ${b.input_file_id} is gone`);
  return parseBatchInput(content.toString("utf8")).lines;
}

/** What finalizing `b` now would end in, or null when it is not finished yet. */
export function finalOutcome(b: StoredBatch, now = unixNow()): "completed" | "cancelled" | "expired" | null {
  const done = b.request_counts.completed + b.request_counts.failed;
  if (b.status === "cancelling") return "cancelled";
  if (b.status === "finalizing") return "completed";
  if (b.status !== "in_progress") return null;
  if (b.request_counts.total > 0 && done >= b.request_counts.total) return "completed";
  return now > b.expires_at ? "expired" : null;
}

export async function finalizeBatch(d: FinalizeDeps, batchId: string): Promise<BatchStatus | null> {
  const b = await d.batches.get(batchId);
  if (!b) return null;
  const outcome = finalOutcome(b);
  if (!outcome) return b.status;
  if (outcome === "completed") await d.batches.transition(batchId, "finalizing", {}, ["in_progress"]);
  // Input order for the files; without the input (deleted meanwhile) the results' own order, and no
  // unrun lines can be named.
  const lines = await batchLines(d, b).catch(async () =>
    [...(await d.batches.resultIds(batchId))].map((custom_id) => ({ custom_id }) as InputLine),
  );
  if (outcome !== "completed") {
    const have = await d.batches.resultIds(batchId);
    const code = outcome === "cancelled" ? "batch_cancelled" : "batch_expired";
    const message =
      outcome === "cancelled" ? "The batch was cancelled before this request ran." : "The batch expired before this request ran.";
    for (const l of lines)
      if (!have.has(l.custom_id)) await d.batches.record(batchId, "failed", unexecuted(batchId, l.custom_id, code, message));
  }
  const results = await d.batches.results(batchId);
  const out: string[] = [];
  const err: string[] = [];
  for (const l of lines) {
    const r = results.get(l.custom_id);
    if (!r) continue; // cannot happen after the loop above (completed: every line has a result)
    (r.kind === "completed" ? out : err).push(`${JSON.stringify(r.line)}\n`);
  }
  const fields: Record<string, string> = {};
  const stem = batchId.replace(/^batch_/, "");
  if (out.length > 0) fields.output_file_id = await writeFile(d, b, `file-${stem}-output`, `${batchId}_output.jsonl`, out);
  if (err.length > 0) fields.error_file_id = await writeFile(d, b, `file-${stem}-errors`, `${batchId}_errors.jsonl`, err);
  const from: BatchStatus[] =
    outcome === "completed" ? ["finalizing"] : outcome === "cancelled" ? ["cancelling"] : ["in_progress", "finalizing"];
  await d.batches.transition(batchId, outcome, fields, from);
  return (await d.batches.status(batchId)) ?? outcome;
}

async function writeFile(d: FinalizeDeps, b: StoredBatch, id: string, filename: string, lines: string[]): Promise<string> {
  const content = Buffer.from(lines.join(""), "utf8");
  await d.storage.put(id, content);
  await d.files.create({
    id,
    object: "file",
    bytes: content.length,
    created_at: unixNow(),
    filename,
    purpose: "batch_output",
    status: "processed",
    expires_at: null,
    status_details: null,
    owner: b.owner,
    lines: 0,
  });
  return id;
}
