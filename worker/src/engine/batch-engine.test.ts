/**
 * The worker with a real (tiny synthetic) model over real gRPC: Generate streams tokens equal to the
 * engine's own greedy decode, concurrent streams batch together, Abort and client cancel free blocks,
 * and bad requests get typed errors.
 */
import { BlockPool, Engine, LocalSequence, Model } from "@expertmesh/kernels";
import { ErrorKind, FinishReason, type GenerateResponse, type InfoResponse, type WorkerClient } from "@expertmesh/proto/worker";
import { Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTinyWorker, type TinyWorker } from "../testing/tiny-worker.ts";
import { errorDetailOf } from "../transport/grpc-errors.ts";

let tiny: TinyWorker;
let client: WorkerClient;
let dir: string;

beforeAll(async () => {
  tiny = await startTinyWorker();
  ({ client, dir } = tiny);
});
afterAll(() => tiny.close());

function generate(requestId: string, prompt: number[], maxTokens: number, extra: object = {}) {
  const events: GenerateResponse[] = [];
  const stream = client.generate(
    {
      requestId,
      promptTokenIds: prompt,
      stopTokenIds: [4095],
      maxTokens,
      priority: 1,
      deadlineUnixMs: 0,
      clampMaxTokens: false,
      maxReasoningTokens: 0,
      ...extra,
    },
    new Metadata(),
  );
  const done = new Promise<{ events: GenerateResponse[]; error?: ServiceError }>((resolve) => {
    stream.on("data", (e: GenerateResponse) => events.push(e));
    stream.on("end", () => resolve({ events }));
    stream.on("error", (error: ServiceError) => resolve({ events, error }));
  });
  return { stream, done };
}

const tokensOf = (events: GenerateResponse[]) => events.flatMap((e) => e.tokens?.tokens.map((t) => t.tokenId) ?? []);

async function referenceGreedy(prompt: number[], n: number): Promise<number[]> {
  const model = await Model.load(dir);
  const engine = new Engine(model, { numFullBlocks: 16, numSlidingBlocks: 16 });
  const seq = new LocalSequence(engine, new BlockPool(16), new BlockPool(16));
  seq.reserve(prompt.length + n);
  const out: number[] = [];
  let input = prompt;
  for (let i = 0; i < n; i++) {
    const [r] = await engine.step([seq.entry(input, { sampling: { temperature: 0 } })]);
    seq.advance(input.length);
    out.push(r?.token as number);
    if (r?.token === 4095) break;
    input = [r?.token as number];
  }
  return out;
}

describe("worker Generate with a model", () => {
  it("reports the model in Info and SERVING capacity", async () => {
    const info = await new Promise((resolve, reject) => client.info({}, (err, res) => (err ? reject(err) : resolve(res))));
    expect(info).toMatchObject({
      model: { name: "tiny", vocabSize: 4096, numHiddenLayers: 2, synthetic: true },
      capacity: { kvBlocksTotal: 64 },
    });
  });

  it("streams the engine's greedy tokens and finishes with usage", async () => {
    const prompt = [5, 6, 7, 8, 9];
    const { done } = generate("g1", prompt, 12);
    const { events, error } = await done;
    expect(error).toBeUndefined();
    const want = await referenceGreedy(prompt, 12);
    expect(tokensOf(events)).toEqual(want);
    const fin = events.at(-1)?.finished;
    expect(fin?.usage).toMatchObject({ promptTokens: 5, completionTokens: want.length });
    expect(fin?.reason).toBe(want.at(-1) === 4095 ? FinishReason.FINISH_REASON_STOP : FinishReason.FINISH_REASON_LENGTH);
  });

  it("runs 8 concurrent streams in one batch with the same tokens each gets alone", async () => {
    const prompts = Array.from({ length: 8 }, (_, i) => [10 + i, 20 + i, 30 + i]);
    const results = await Promise.all(prompts.map((p, i) => generate(`c${i}`, p, 6).done));
    for (const [i, r] of results.entries()) expect(tokensOf(r.events)).toEqual(await referenceGreedy(prompts[i] as number[], 6));
    const info = await new Promise<{ capacity?: { kvBlocksFree: number } }>((resolve, reject) =>
      client.info({}, (err, res) => (err ? reject(err) : resolve(res))),
    );
    expect(info.capacity?.kvBlocksFree).toBe(64);
  });

  it("Abort and client cancel end the stream and free the blocks", async () => {
    // 700: long enough to be running when aborted, and within the blocks pins may not take (64 − 16).
    const a = generate("ab", [1, 2, 3], 700);
    await new Promise((r) => setTimeout(r, 50));
    await new Promise((resolve) => client.abort({ requestId: "ab" }, resolve));
    const ra = await a.done;
    expect(ra.events.at(-1)?.finished?.reason).toBe(FinishReason.FINISH_REASON_ABORTED);
    const b = generate("cx", [1, 2, 3], 700);
    await new Promise((r) => setTimeout(r, 50));
    b.stream.cancel();
    expect((await b.done).error?.code).toBe(status.CANCELLED);
    await expect
      .poll(
        async () =>
          (await new Promise<{ capacity?: { kvBlocksFree: number } }>((res) => client.info({}, (_e, r) => res(r)))).capacity?.kvBlocksFree,
      )
      .toBe(64);
  });

  it("rejects impossible requests with typed errors", async () => {
    const tooLong = await generate("big", [1], 200_000).done;
    expect(tooLong.error?.code).toBe(status.OUT_OF_RANGE);
    expect(errorDetailOf(tooLong.error as ServiceError)?.kind).toBe(ErrorKind.ERROR_KIND_CONTEXT_LENGTH_EXCEEDED);
    const badToken = await generate("bad", [5000], 4).done;
    expect(badToken.error?.code).toBe(status.INVALID_ARGUMENT);
    expect(badToken.error?.details).toContain("prompt_token_ids[0]: 5000 is not below the vocabulary size 4096");
  });

  it("clamp_max_tokens lowers a default max_tokens to what fits the KV cache instead of failing", async () => {
    const info = await new Promise<InfoResponse>((resolve, reject) => client.info({}, (e, r) => (e ? reject(e) : resolve(r))));
    // Tool-loop pins end under pressure: a request may take the whole pool.
    const cache = (info.capacity?.kvBlocksTotal ?? 0) * (info.capacity?.kvBlockSize ?? 0);
    const room = Math.min(cache, info.model?.contextLength ?? 0) - 3;
    expect(room).toBeGreaterThan(0);
    const r = await generate("clamped", [1, 2, 3], 200_000, { clampMaxTokens: true, stopTokenIds: [] }).done;
    expect(r.error).toBeUndefined();
    expect(tokensOf(r.events).length).toBe(room);
    expect(r.events.at(-1)?.finished?.reason).toBe(FinishReason.FINISH_REASON_LENGTH);
  }, 120_000);
});
