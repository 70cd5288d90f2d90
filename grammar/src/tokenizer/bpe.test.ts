/**
 * Our byte-pair encoder against js-tiktoken's (the plain reference: tiktoken's algorithm as written,
 * quadratic per merge), on generated and real text; its bound on long runs; the work budget.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import fc from "fast-check";
import { Tiktoken } from "js-tiktoken/lite";
import o200kBase from "js-tiktoken/ranks/o200k_base";
import { describe, expect, it } from "vitest";
import { BytePairEncoder } from "./bpe.ts";
import { HarmonyTokenizer } from "./tokenizer.ts";

const tok = new HarmonyTokenizer();
const reference = new Tiktoken({ ...o200kBase, special_tokens: {} });
const ref = (s: string) => reference.encode(s, [], []);

/** Characters of every class the pre-tokenizer tells apart, plus a few that stress the byte level. */
const ALPHABET = [
  ..."aAzZ éÉß中文日本語한국어🙂👍🏽\u0301\u200d09٣ \t\n\r.,;:!?'\"-_=+*/\\<>|()[]{}$#@%&~`",
  "'s",
  "'LL",
  "\ud800",
  "\udfff",
];
const mixed = fc.array(fc.constantFrom(...ALPHABET), { maxLength: 200 }).map((a) => a.join(""));

describe("BytePairEncoder: exactly tiktoken's encoding", () => {
  it("on generated strings of every character class (incl. lone surrogates)", () => {
    fc.assert(
      fc.property(mixed, (s) => {
        expect(tok.encode(s)).toEqual(ref(s));
      }),
      { numRuns: 1500 },
    );
  });

  it("on arbitrary unicode strings", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", maxLength: 80 }), (s) => {
        expect(tok.encode(s)).toEqual(ref(s));
      }),
      { numRuns: 1000 },
    );
  });

  it("on runs a few hundred long (where merge order matters most)", () => {
    for (const c of ["a", " ", "=", "-", "0", "中", "🙂", "ab", "\n", " \n"]) {
      for (const n of [1, 2, 3, 7, 64, 129, 300]) expect(tok.encode(c.repeat(n)), `${JSON.stringify(c)} × ${n}`).toEqual(ref(c.repeat(n)));
    }
  });

  it("on English prose and code (READMEs and this folder's sources)", () => {
    const require = createRequire(import.meta.url);
    const files = [
      join(dirname(require.resolve("@mlc-ai/web-xgrammar/package.json")), "README.md"),
      new URL("../../../README.md", import.meta.url).pathname,
      new URL("./tokenizer.ts", import.meta.url).pathname,
      new URL("./bpe.ts", import.meta.url).pathname,
    ];
    for (const f of files) {
      const text = readFileSync(f, "utf8");
      expect(tok.encode(text), f).toEqual(ref(text));
    }
  });
});

/**
 * A small vocabulary over "ab" in any rank order: where o200k never makes a pair ranked below the one
 * being merged, nor fills a rank's bucket out of position order, these vocabularies do both.
 */
const vocabulary = fc
  .uniqueArray(fc.stringMatching(/^[ab]{2,6}$/), { minLength: 1, maxLength: 80 })
  .chain((multi) => fc.shuffledSubarray(["a", "b", "c", ...multi], { minLength: multi.length + 3 }));

function encoders(tokens: readonly string[]) {
  const bytes = Buffer.from(tokens.join(""));
  const offsets = new Uint32Array(tokens.length + 1);
  for (const [id, t] of tokens.entries()) offsets[id + 1] = (offsets[id] as number) + t.length;
  const bpe_ranks = tokens.map((t, id) => `! ${id} ${Buffer.from(t).toString("base64")}`).join("\n");
  const reference = new Tiktoken({ bpe_ranks, pat_str: "[ab]+", special_tokens: {} });
  return { ours: new BytePairEncoder(bytes, offsets, tokens.length), reference };
}

describe("BytePairEncoder: tiktoken's merge order in any vocabulary", () => {
  it("on random vocabularies and texts over two letters", () => {
    fc.assert(
      fc.property(vocabulary, fc.stringMatching(/^[ab]{1,200}$/), (tokens, text) => {
        const { ours, reference } = encoders(tokens);
        const out: number[] = [];
        ours.encodePiece(Buffer.from(text), text.length, out);
        expect(out).toEqual(reference.encode(text, [], []));
      }),
      { numRuns: 400 },
    );
  });
});

describe("BytePairEncoder: bounded work", () => {
  /** The fastest of a few runs (a shared machine only ever slows a run down). */
  const fastest = (s: string) => {
    let best = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      tok.encode(s);
      best = Math.min(best, performance.now() - t0);
    }
    return best;
  };

  // Both sizes are past the encode cache's per-text limit, so every run encodes.
  // One character, spaces, punctuation, digits (pieces of three), CJK, letters of mixed scripts (one
  // piece), and a mix the pre-tokenizer cuts into many pieces: the pattern and the merges both linear.
  it.each(["a", " ", "=", "7", "中", "aé中한Бz", "x= 1;\n"])(
    "a run of %j 4× as long costs far less than 16× (not quadratic)",
    (c) => {
      const chars = (n: number) => c.repeat(Math.ceil(n / c.length));
      const small = fastest(chars(100_000));
      const large = fastest(chars(400_000));
      // Quadratic would be 16×; n log n is ~4.5×. The margin absorbs a noisy machine.
      expect(large / small).toBeLessThan(10);
    },
    30_000,
  );

  it("a budget that throws stops a long encode within a few thousand units of work", () => {
    const stop = new Error("stop");
    const budget = () => {
      const b = {
        checks: 0,
        check() {
          if (++b.checks === 3) throw stop;
        },
      };
      return b;
    };
    const one = budget();
    expect(() => tok.encode("a".repeat(1_000_000), one)).toThrow(stop);
    expect(one.checks).toBe(3);
    const two = budget();
    expect(() => tok.encodeWithSpecials(`x${"b".repeat(1_000_000)}<|end|>`, two)).toThrow(stop);
    expect(two.checks).toBe(3);
    // A stopped encode leaves nothing behind: the next pieces encode as before.
    for (const s of ["b".repeat(5_000), `${"=".repeat(300)} ${"b".repeat(300)}`]) expect(tok.encode(s)).toEqual(ref(s));
  });
});
