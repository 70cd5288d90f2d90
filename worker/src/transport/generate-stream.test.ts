/**
 * GenerateStream with a real (tiny synthetic) model over real gRPC: many generations on one stream get
 * the tokens Generate gives each alone, the events of an engine step share one message, a cancelled
 * generation stops and frees its blocks while the others go on, failures arrive as typed per-generation
 * errors, and the stream ends once the client half-closed and every generation finished.
 */
import {
  ErrorKind,
  FinishReason,
  type GenerateRequest,
  type GenerateResponse,
  type GenerateStreamResponse,
  type GenerationEvent,
  type WorkerClient,
} from "@expertmesh/proto/worker";
import { Metadata, status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTinyWorker, type TinyWorker } from "../testing/tiny-worker.ts";

let tiny: TinyWorker;
let client: WorkerClient;

beforeAll(async () => {
  tiny = await startTinyWorker();
  ({ client } = tiny);
});
afterAll(() => tiny.close());

const request = (requestId: string, prompt: number[], maxTokens: number): GenerateRequest => ({
  requestId,
  promptTokenIds: prompt,
  stopTokenIds: [4095],
  maxTokens,
  priority: 1,
  deadlineUnixMs: 0,
  clampMaxTokens: false,
  maxReasoningTokens: 0,
});

/** Generate alone: the tokens one request gets on its own stream. */
function generateAlone(r: GenerateRequest): Promise<number[]> {
  const out: number[] = [];
  const s = client.generate(r, new Metadata());
  return new Promise((resolve, reject) => {
    s.on("data", (e: GenerateResponse) => out.push(...(e.tokens?.tokens.map((t) => t.tokenId) ?? [])));
    s.on("end", () => resolve(out));
    s.on("error", reject);
  });
}

/** Opens a GenerateStream; collects every message and each handle's events. */
function openStream() {
  const call = client.generateStream();
  const messages: GenerateStreamResponse[] = [];
  const byHandle = new Map<number, GenerationEvent[]>();
  call.on("data", (m: GenerateStreamResponse) => {
    messages.push(m);
    for (const e of m.events) byHandle.set(e.handle, [...(byHandle.get(e.handle) ?? []), e]);
  });
  const ended = new Promise<{ code: number }>((resolve) => {
    call.on("status", (s) => resolve({ code: s.code }));
    call.on("error", () => {});
  });
  const lastOf = (handle: number) => byHandle.get(handle)?.at(-1);
  const tokensOf = (handle: number) => (byHandle.get(handle) ?? []).flatMap((e) => e.tokens?.tokens.map((t) => t.tokenId) ?? []);
  return { call, messages, byHandle, ended, lastOf, tokensOf };
}

/** A generation long enough to be cut mid-way, and within what a request may take beside tool-loop pins (¾ of the 64 × 16-token pool). */
const LONG = 700;

const freeBlocks = () => new Promise<number | undefined>((resolve) => client.info({}, (_e, r) => resolve(r?.capacity?.kvBlocksFree)));

describe("worker GenerateStream", () => {
  it("runs 8 generations on one stream with Generate's tokens, a step's events in one message, and ends after the half-close", async () => {
    const requests = Array.from({ length: 8 }, (_, i) => request(`m${i}`, [10 + i, 20 + i, 30 + i], 6));
    const alone = await Promise.all(requests.map(generateAlone));
    const s = openStream();
    for (const [i, r] of requests.entries()) s.call.write({ start: { handle: i + 1, request: r, traceContext: {} } });
    s.call.end();
    expect((await s.ended).code).toBe(status.OK);
    let tokens = 0;
    for (const [i] of requests.entries()) {
      expect(s.tokensOf(i + 1)).toEqual(alone[i]);
      tokens += s.tokensOf(i + 1).length;
      const fin = s.lastOf(i + 1)?.finished;
      expect(fin?.usage).toMatchObject({ promptTokens: 3, completionTokens: alone[i]?.length });
    }
    // 8 sequences decoding together: one message per step carries all of them, not one per token.
    expect(s.messages.length).toBeLessThan(tokens / 2);
    expect(await freeBlocks()).toBe(64);
  });

  it("a cancelled generation stops and frees its blocks; the stream's other generation finishes", async () => {
    const s = openStream();
    s.call.write({ start: { handle: 1, request: request("long", [1, 2, 3], LONG), traceContext: {} } });
    s.call.write({ start: { handle: 2, request: request("short", [4, 5, 6], 5), traceContext: {} } });
    await expect.poll(() => s.tokensOf(1).length).toBeGreaterThan(2);
    s.call.write({ cancel: { handle: 1 } });
    await expect.poll(() => s.lastOf(2)?.finished !== undefined).toBe(true);
    await new Promise((r) => setTimeout(r, 150)); // what was in flight when the cancel came has arrived
    const afterCancel = s.tokensOf(1).length;
    await new Promise((r) => setTimeout(r, 150));
    expect(s.tokensOf(1).length).toBe(afterCancel); // nothing more for the cancelled handle
    expect(afterCancel).toBeLessThan(LONG);
    expect(s.lastOf(1)?.finished).toBeUndefined();
    s.call.end();
    expect((await s.ended).code).toBe(status.OK);
    await expect.poll(freeBlocks).toBe(64);
  });

  it("fails impossible requests with typed per-generation errors and keeps the stream open", async () => {
    const s = openStream();
    s.call.write({ start: { handle: 1, request: request("big", [1], 200_000), traceContext: {} } });
    s.call.write({ start: { handle: 2, request: request("bad", [5000], 4), traceContext: {} } });
    s.call.write({ start: { handle: 3, request: request("", [1, 2], 4), traceContext: {} } });
    s.call.write({ start: { handle: 4, request: request("ok", [1, 2], 3), traceContext: {} } });
    s.call.end();
    expect((await s.ended).code).toBe(status.OK);
    expect(s.lastOf(1)?.error).toMatchObject({ code: status.OUT_OF_RANGE, detail: { kind: ErrorKind.ERROR_KIND_CONTEXT_LENGTH_EXCEEDED } });
    expect(s.lastOf(2)?.error?.code).toBe(status.INVALID_ARGUMENT);
    expect(s.lastOf(2)?.error?.detail?.message).toContain("prompt_token_ids[0]: 5000 is not below the vocabulary size 4096");
    expect(s.lastOf(3)?.error?.detail?.kind).toBe(ErrorKind.ERROR_KIND_INVALID_ARGUMENT);
    expect(s.lastOf(4)?.finished?.reason).toBeOneOf([FinishReason.FINISH_REASON_STOP, FinishReason.FINISH_REASON_LENGTH]);
  });

  it("a client that drops the stream aborts every generation on it (blocks freed)", async () => {
    const s = openStream();
    for (let h = 1; h <= 3; h++) s.call.write({ start: { handle: h, request: request(`drop${h}`, [h, 2, 3], LONG), traceContext: {} } });
    await expect.poll(() => s.tokensOf(3).length).toBeGreaterThan(1);
    s.call.cancel();
    expect((await s.ended).code).toBe(status.CANCELLED);
    await expect.poll(freeBlocks).toBe(64);
  });
});
