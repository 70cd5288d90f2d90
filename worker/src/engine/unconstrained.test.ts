/**
 * Constrained decoding leaves unconstrained requests alone (#24). Without a constraint (what the gateway
 * sends with the Harmony guard off) greedy tokens through a real worker are OpenAI's reference tokens on
 * every golden case. With the guard on, a greedy output that was already well formed comes out with the
 * same tokens, and a malformed one is steered: shown on a model built to write a known Harmony message,
 * since a random model's first token is never a valid header.
 */

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeText, HarmonyToken as T } from "@expertmesh/grammar";
import { CONSTRAINT_SPEC_VERSION } from "@expertmesh/grammar/spec";
import { headerParts, splitMessages } from "@expertmesh/grammar/testing";
import { SHAPES } from "@expertmesh/kernels";
import { editTensor, writeSyntheticCheckpoint } from "@expertmesh/kernels/checkpoint";
import { goldenCases } from "@expertmesh/kernels/testing";
import type { GenerateRequest, WorkerClient } from "@expertmesh/proto/worker";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collectGeneration, generateRequest } from "../testing/generation.ts";
import { startModelWorker, type TinyWorker } from "../testing/tiny-worker.ts";

let ids = 0;
function greedy(client: WorkerClient, prompt: number[], extra: Partial<GenerateRequest> = {}) {
  return collectGeneration(client, generateRequest({ requestId: `u${ids++}`, promptTokenIds: prompt, ...extra }));
}

describe("no constraint: greedy tokens are the reference's on every golden case", () => {
  it.each(goldenCases().map((g) => [g.name, g] as const))("%s", async (_, g) => {
    const w = await startModelWorker(g.dir, { WORKER_PRECISION: "exact" });
    try {
      const o = await greedy(w.client, g.tokens, { maxTokens: g.fp32.greedy.length });
      expect(o.error).toBeUndefined();
      const tokens = o.tokens.map((t) => t.tokenId);
      const compared = g.fp32.greedy_margins.findIndex((m) => m <= 1e-3);
      const n = compared < 0 ? g.fp32.greedy.length : compared;
      expect(n).toBeGreaterThan(0);
      expect(tokens.slice(0, n)).toEqual(g.fp32.greedy.slice(0, n));
    } finally {
      await w.close();
    }
  });
});

/** One o200k_harmony token for a text the test needs as a single token. */
function token(text: string): number {
  const ids = encodeText(text);
  if (ids.length !== 1) throw new Error(`'${text}' is ${ids.length} tokens`);
  return ids[0] as number;
}

const ASSISTANT = token("assistant");
const USER = token("user");
const FINAL = token("final");
const HI = token("Hi");
/** Each token's successor: the model writes `<|channel|>final<|message|>Hi<|return|>` after "assistant", and a header-less `<|message|>…` after "user". */
const NEXT: [number, number][] = [
  [ASSISTANT, T.channel],
  [T.channel, FINAL],
  [FINAL, T.message],
  [T.message, HI],
  [HI, T.return],
  [USER, T.message],
];

/**
 * A tiny full-vocabulary model whose next token depends only on the last one (NEXT): attention outputs and
 * expert down-projections are zero, so the residual stream is the last token's embedding; each of NEXT's
 * tokens embeds as its own unit vector, and the successor's unembedding row points along it.
 */
function writeBigramModel(dir: string): void {
  const shape = SHAPES.tiny;
  writeSyntheticCheckpoint({ shape, out: dir, seed: 13 });
  const zero = (name: string) => editTensor(dir, name, ({ data }) => data.fill(0));
  for (let l = 0; l < shape.numLayers; l++) {
    const p = `model.layers.${l}.`;
    for (const n of ["self_attn.o_proj.weight", "self_attn.o_proj.bias", "mlp.experts.down_proj_blocks", "mlp.experts.down_proj_bias"])
      zero(p + n);
  }
  const ONE = 0x3f80; // bf16 1.0
  const STRONG = 0x4100; // bf16 8.0: a logit of 64 against the random rows' few units
  editTensor(dir, "model.norm.weight", ({ data }) => {
    for (let i = 0; i < shape.hidden; i++) data.writeUInt16LE(ONE, 2 * i);
  });
  editTensor(dir, "model.embed_tokens.weight", ({ data }) => {
    NEXT.forEach(([from], slot) => {
      data.fill(0, 2 * from * shape.hidden, 2 * (from + 1) * shape.hidden);
      data.writeUInt16LE(ONE, 2 * (from * shape.hidden + slot));
    });
  });
  editTensor(dir, "lm_head.weight", ({ data }) => {
    NEXT.forEach(([, to], slot) => {
      data.writeUInt16LE(STRONG, 2 * (to * shape.hidden + slot));
    });
  });
}

describe("the Harmony guard on: a well-formed output is unchanged, a malformed one is steered", () => {
  let w: TinyWorker;
  const guard = {
    constraint: {
      version: CONSTRAINT_SPEC_VERSION,
      specJson: JSON.stringify({ version: 1, guard: true, tools: [], toolChoice: { kind: "auto" }, finalFormat: { kind: "text" } }),
    },
  };
  const prompt = (last: number) => [T.start, USER, T.message, ...encodeText("Say hi."), T.end, T.start, last];
  const ids = (o: Awaited<ReturnType<typeof greedy>>) => {
    expect(o.error).toBeUndefined();
    return o.tokens.map((t) => t.tokenId);
  };

  beforeAll(async () => {
    const dir = join(mkdtempSync(join(tmpdir(), "bigram-")), "model");
    writeBigramModel(dir);
    w = await startModelWorker(dir, { WORKER_PRECISION: "exact" });
  });
  afterAll(() => w?.close());

  it("after <|start|>assistant: the same tokens with and without the guard", async () => {
    const free = ids(await greedy(w.client, prompt(ASSISTANT), { stopTokenIds: [T.return] }));
    expect(free).toEqual([T.channel, FINAL, T.message, HI, T.return]); // the model does what it was built to
    const guarded = ids(await greedy(w.client, prompt(ASSISTANT), { ...guard, stopTokenIds: [T.return] }));
    expect(guarded).toEqual(free);
  });

  it("a header-less <|message|> is not written with the guard on; the guarded output is well formed", async () => {
    const free = ids(await greedy(w.client, prompt(USER), { stopTokenIds: [T.return] }));
    expect(free).toEqual([T.message, HI, T.return]);
    const guarded = ids(await greedy(w.client, prompt(USER), { ...guard, stopTokenIds: [T.return] }));
    expect(guarded[0]).not.toBe(T.message);
    const messages = splitMessages(guarded);
    expect(messages.length).toBeGreaterThan(0);
    for (const m of messages) expect(headerParts(m.header), m.header).not.toBeNull();
  });
});
