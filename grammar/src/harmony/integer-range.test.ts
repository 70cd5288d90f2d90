/** The integer range rule against xgrammar's own matcher, every integer near the bounds tried. */
import { beforeAll, describe, expect, it } from "vitest";
import { loadXGrammar, type XGrammar } from "../engine/xgrammar.ts";
import { integerBounds, integerRangeEbnf } from "./integer-range.ts";

let xg: XGrammar;
beforeAll(async () => {
  xg = await loadXGrammar();
});

const CASES: Array<[number | null, number | null]> = [
  [0, 130],
  [1, 99],
  [-1250, -7],
  [-20, null],
  [null, 3],
  [7, 7],
  [0, null],
  [-5, 1000],
  [95, 1005],
  [null, -100],
];

describe("integerRangeEbnf", () => {
  it.each(CASES)("accepts exactly [%s, %s]", async (lo, hi) => {
    const grammar = await xg.Grammar.fromEBNF(`root ::= ${integerRangeEbnf(lo, hi)}`);
    for (let n = -1400; n <= 1400; n++) {
      const inRange = (lo === null || n >= lo) && (hi === null || n <= hi);
      expect(await xg.Testings.isGrammarAcceptString(grammar, String(n)), String(n)).toBe(inRange);
    }
    for (const bad of ["-0", "007", "1.0", "+1"]) expect(await xg.Testings.isGrammarAcceptString(grammar, bad), bad).toBe(false);
    grammar.dispose();
  });

  it("reads the four bound keywords as one inclusive range", () => {
    expect(integerBounds({ minimum: 1.5, exclusiveMaximum: 10 })).toEqual({ lo: 2, hi: 9 });
    expect(integerBounds({ exclusiveMinimum: -3, maximum: 4.9, minimum: -10 })).toEqual({ lo: -2, hi: 4 });
    expect(integerBounds({})).toEqual({ lo: null, hi: null });
  });
});
