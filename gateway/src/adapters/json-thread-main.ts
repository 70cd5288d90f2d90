/** The thread of adapters/json-threads.ts: gathers each body's chunks, then parses it with the event loop's rules. */
import { parentPort, workerData } from "node:worker_threads";
import { InvalidJsonBody, parseJsonBody } from "../http/json-body.ts";
import type { JsonThreadMessage, JsonThreadResult } from "./json-threads.ts";
import type { ThreadData } from "./prompt-thread-protocol.ts";
import { lowerThreadPriority } from "./thread-priority.ts";

lowerThreadPriority((workerData as ThreadData | undefined)?.nice);
const bodies = new Map<number, Uint8Array[]>();

function parse(chunks: readonly Uint8Array[]): unknown {
  const body = chunks.length === 1 && chunks[0] ? Buffer.from(chunks[0].buffer) : Buffer.concat(chunks);
  return parseJsonBody(body);
}

parentPort?.on("message", (m: JsonThreadMessage) => {
  if ("chunk" in m) {
    const chunks = bodies.get(m.id) ?? [];
    chunks.push(m.chunk);
    bodies.set(m.id, chunks);
    return;
  }
  const chunks = bodies.get(m.id) ?? [];
  bodies.delete(m.id);
  if ("abort" in m) return;
  let result: JsonThreadResult;
  try {
    result = { id: m.id, ok: true, value: parse(chunks) };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    result = { id: m.id, ok: false, invalid: err instanceof InvalidJsonBody, message };
  }
  parentPort?.postMessage(result);
});
