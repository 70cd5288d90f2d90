/** The streaming decoder against a plain reference: one TextDecoder fed every token's bytes in stream mode. */
import { seededRandom } from "@expertmesh/common/testing";
import { describe, expect, it } from "vitest";
import { HarmonyTokenizer, StreamDecoder, VOCAB_SIZE } from "./tokenizer.ts";

const tok = new HarmonyTokenizer();

function reference(ids: number[]): string[] {
  const d = new TextDecoder("utf-8", { fatal: false });
  return [...ids.map((id) => d.decode(tok.bytes(id), { stream: true })), d.decode()];
}

function decoded(ids: number[]): string[] {
  const d = new StreamDecoder(tok);
  return [...ids.map((id) => d.push([id])), d.flush()];
}

const rng = seededRandom;

describe("StreamDecoder", () => {
  // Tokens that hold part of a character, and single bytes of every kind (leads, continuations, invalid).
  const partial: number[] = [];
  for (let id = 0; id < 199998 && partial.length < 4000; id++) if (tok.wholeText(id) === null) partial.push(id);
  const bytesOnly = Array.from({ length: 256 }, (_, b) => tok.encode(String.fromCharCode(b))).flat();

  it("finds tokens that split characters (the case the fast path must not take)", () => {
    expect(partial.length).toBeGreaterThan(100);
  });

  it("holds back a character split across tokens", () => {
    const ids = tok.encode("é😀中");
    expect(decoded(ids).join("")).toBe("é😀中");
    expect(decoded(ids)).toEqual(reference(ids));
  });

  it("gives what a streaming TextDecoder gives, token by token, on random mixes of whole, partial and special tokens", () => {
    const next = rng(7);
    const pick = (xs: number[]) => xs[Math.floor(next() * xs.length)] as number;
    for (let round = 0; round < 400; round++) {
      const ids = Array.from({ length: 1 + Math.floor(next() * 24) }, () => {
        const r = next();
        if (r < 0.4) return pick(partial);
        if (r < 0.55) return pick(bytesOnly);
        if (r < 0.6) return 199998 + Math.floor(next() * (VOCAB_SIZE - 199998));
        return Math.floor(next() * 199998);
      });
      expect(decoded(ids), `ids ${JSON.stringify(ids)}`).toEqual(reference(ids));
    }
  });

  it("decodes ids outside the vocabulary as nothing", () => {
    expect(decoded([VOCAB_SIZE + 5, 1000])).toEqual(reference([VOCAB_SIZE + 5, 1000]));
  });
});

describe("HarmonyTokenizer.encode cache", () => {
  it("gives the same ids from the cache as from the encoder, and a copy the caller may change", () => {
    const fresh = new HarmonyTokenizer();
    const text = "You are ChatGPT, a large language model trained by OpenAI.\nReasoning: high";
    const first = fresh.encode(text);
    first.push(-1);
    const second = fresh.encode(text);
    expect(second).toEqual(first.slice(0, -1));
    expect(second).toEqual(tok.encode(text));
    expect(fresh.decode(second)).toBe(text);
  });
});

describe("HarmonyTokenizer.encodeWithSpecials", () => {
  it("finds the Harmony specials where js-tiktoken with the same specials does", async () => {
    const { Tiktoken } = await import("js-tiktoken/lite");
    const { default: o200k } = await import("js-tiktoken/ranks/o200k_base");
    const specials: Record<string, number> = {};
    for (let id = 199998; id < VOCAB_SIZE; id++) specials[tok.decode([id])] = id;
    const reference = new Tiktoken({ ...o200k, special_tokens: {} }, specials);
    const texts = [
      "",
      "<|start|>user<|message|>hi<|end|><|start|>assistant",
      "<|foo|><|end|>",
      "<|<|end|>|>",
      "a<|return|>b<|call|>",
      "<|reserved_200013|> and <|reserved_201087|>",
      "<|endofprompt|> stays text in Harmony",
      "<|reserved_199997|> <|reserved_201088|> are outside the specials",
      "<|channel|>analysis<|message|>é😀<|end|>",
    ];
    for (const t of texts) expect(tok.encodeWithSpecials(t), t).toEqual(reference.encode(t, "all", []));
  });
});
