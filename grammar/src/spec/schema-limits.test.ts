/** The nesting limits a schema must keep for the grammar engine (schema-limits.ts). */
import type { AppError } from "@expertmesh/common";
import { describe, expect, it } from "vitest";
import { MAX_PATTERN_GROUP_DEPTH, MAX_PATTERN_REPEAT, MAX_SCHEMA_DEPTH, MAX_STRING_LENGTH, patternShape } from "./schema-limits.ts";
import { assertSchemaSupported, type JsonSchema } from "./schema-support.ts";

const str = { type: "string" };
const object = (a: object) => ({ type: "object", properties: { a }, required: ["a"], additionalProperties: false });
/** `n` subschemas below the root, each an object holding the next (the last a string). */
function nested(n: number): object {
  let s: object = str;
  for (let i = 1; i < n; i++) s = object(s);
  return object(s);
}
const refusal = (schema: object): AppError | undefined => {
  try {
    assertSchemaSupported(schema as JsonSchema, "tools[0].parameters");
    return undefined;
  } catch (e) {
    return e as AppError;
  }
};

describe("schema nesting", () => {
  it(`accepts ${MAX_SCHEMA_DEPTH} subschemas deep and refuses one more, naming where`, () => {
    expect(refusal(nested(MAX_SCHEMA_DEPTH))).toBeUndefined();
    const err = refusal(nested(MAX_SCHEMA_DEPTH + 1));
    expect(err?.code).toBe("schema_too_complex");
    expect(err?.http).toBe(400);
    expect(err?.message).toMatch(/^tools\[0\]\.parameters: the JSON schema at #\/properties\/a(\/properties\/a)+ nests deeper than 32/);
  });

  it("counts the depth through local $refs, and lets a recursive schema recurse", () => {
    // Twenty definitions, each an object whose property refers to the next: forty levels once followed.
    const $defs: Record<string, object> = {};
    for (let i = 0; i < 20; i++) $defs[`d${i}`] = i < 19 ? object({ $ref: `#/$defs/d${i + 1}` }) : str;
    expect(refusal({ $defs, ...object({ $ref: "#/$defs/d0" }) })?.code).toBe("schema_too_complex");
    // A linked list refers to itself: a rule of the grammar, not depth.
    const list = { type: "object", properties: { v: { type: "integer" }, next: { anyOf: [{ $ref: "#/$defs/n" }, { type: "null" }] } } };
    expect(refusal({ $defs: { n: list }, ...object({ $ref: "#/$defs/n" }) })).toBeUndefined();
    expect(refusal({ ...object({ $ref: "#" }) })).toBeUndefined();
  });

  it("walks a definition shared by many places a bounded number of times", () => {
    // Each level refers to the next twice: 2^30 paths, walked as a few hundred visits.
    const $defs: Record<string, object> = {};
    for (let i = 0; i < 30; i++) $defs[`d${i}`] = i < 29 ? { anyOf: [{ $ref: `#/$defs/d${i + 1}` }, { $ref: `#/$defs/d${i + 1}` }] } : str;
    expect(refusal({ $defs, ...object({ $ref: "#/$defs/d0" }) })?.code).toBe("schema_too_complex");
  });
});

describe("pattern groups", () => {
  it.each([
    ["^(\\d{3})-(\\d{4})$", 1],
    ["((a)(b))", 2],
    ["\\(\\(\\(", 0],
    ["[(][(]", 0],
    ["(a|(b|(c)))", 3],
  ])("%s nests %i deep", (p, depth) => expect(patternShape(p).groupDepth).toBe(depth));

  it(`accepts groups ${MAX_PATTERN_GROUP_DEPTH} deep and refuses one more`, () => {
    const pattern = (n: number) => ({ type: "string", pattern: `${"(".repeat(n)}a${")".repeat(n)}` });
    expect(refusal(object(pattern(MAX_PATTERN_GROUP_DEPTH)))).toBeUndefined();
    const err = refusal(object(pattern(MAX_PATTERN_GROUP_DEPTH + 1)));
    expect(err?.code).toBe("schema_too_complex");
    expect(err?.message).toContain("#/properties/a/pattern nests groups deeper than 16");
  });
});

describe("repetitions (their compile holds the worker's event loop)", () => {
  it.each([
    ["[a-z]{1,300}", 300],
    ["^\\d{3}-\\d{4}$", 4],
    ["x{7,}", 7],
    ["\\{1000\\}", 0],
    ["[{]1000}", 0],
    ["a{,5}", 0],
  ])("%s repeats at most %i times", (p, n) => expect(patternShape(p).largestRepeat).toBe(n));

  it(`accepts maxLength ${MAX_STRING_LENGTH} and pattern counts up to ${MAX_PATTERN_REPEAT}, refuses more`, () => {
    expect(refusal(object({ type: "string", maxLength: MAX_STRING_LENGTH }))).toBeUndefined();
    expect(refusal(object({ type: "string", pattern: `^[a-z]{1,${MAX_PATTERN_REPEAT}}$` }))).toBeUndefined();
    const long = refusal(object({ type: "string", maxLength: 500 }));
    expect(long?.code).toBe("schema_too_complex");
    expect(long?.message).toContain("#/properties/a/maxLength allows more than 16 characters");
    const repeat = refusal(object({ type: "string", pattern: "^[a-z]{1,300}$" }));
    expect(repeat?.message).toContain("#/properties/a/pattern repeats more than 64 times");
  });
});
