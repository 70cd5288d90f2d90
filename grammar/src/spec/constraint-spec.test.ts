import { AppError } from "@expertmesh/common";
import { describe, expect, it } from "vitest";
import { type ConstraintSpec, constraintKey, isUnconstrained, parseConstraintSpec, validateConstraintSpec } from "./constraint-spec.ts";
import { assertSchemaSupported } from "./schema-support.ts";

const weather = { name: "get_weather", strict: true, parameters: { type: "object", properties: { city: { type: "string" } } } };

const spec = (over: Partial<ConstraintSpec> = {}): ConstraintSpec => ({
  version: 1,
  guard: true,
  tools: [weather],
  toolChoice: { kind: "auto" },
  finalFormat: { kind: "text" },
  ...over,
});

function refusal(fn: () => unknown): AppError {
  try {
    fn();
  } catch (err) {
    if (err instanceof AppError) return err;
    throw err;
  }
  throw new Error("expected a refusal");
}

describe("constraint spec", () => {
  it("survives JSON and parses back to the same spec and key", () => {
    const s = spec({ finalFormat: { kind: "json_schema", name: "answer", schema: { type: "object" } } });
    const back = parseConstraintSpec(JSON.parse(JSON.stringify(s)));
    expect(back).toEqual(s);
    expect(constraintKey(back)).toBe(constraintKey(s));
  });

  it("keys by content, not key order", () => {
    const reordered = JSON.parse('{"finalFormat":{"kind":"text"},"toolChoice":{"kind":"auto"},"tools":[],"guard":true,"version":1}');
    expect(constraintKey(parseConstraintSpec(reordered))).toBe(constraintKey(spec({ tools: [] })));
    expect(constraintKey(spec({ guard: false }))).not.toBe(constraintKey(spec()));
  });

  it("refuses another version, an undeclared named tool, required without tools and bad names", () => {
    expect(refusal(() => parseConstraintSpec({ ...spec(), version: 2 })).message).toContain("version 1");
    expect(refusal(() => validateConstraintSpec(spec({ toolChoice: { kind: "function", name: "nope" } }))).message).toContain('"nope"');
    expect(refusal(() => validateConstraintSpec(spec({ tools: [], toolChoice: { kind: "required" } }))).code).toBe("invalid_constraint");
    expect(refusal(() => validateConstraintSpec(spec({ tools: [{ ...weather, name: 'a"b' }] }))).message).toContain("tools[0].name");
    expect(refusal(() => validateConstraintSpec(spec({ tools: [weather, weather] }))).message).toContain("declared twice");
  });

  it("is unconstrained only with the guard off and nothing forced", () => {
    expect(isUnconstrained(spec({ guard: false, tools: [{ ...weather, strict: false }] }))).toBe(true);
    expect(isUnconstrained(spec({ guard: false }))).toBe(false); // a strict tool
    expect(isUnconstrained(spec({ guard: false, tools: [{ ...weather, strict: false }], toolChoice: { kind: "required" } }))).toBe(false);
    expect(isUnconstrained(spec({ guard: false, tools: [], finalFormat: { kind: "json_object" } }))).toBe(false);
  });
});

describe("schema support", () => {
  it.each([
    ["oneOf", { oneOf: [{ type: "string" }] }, "oneOf", "#/oneOf"],
    [
      "multipleOf deep",
      { type: "object", properties: { n: { type: "integer", multipleOf: 5 } } },
      "multipleOf",
      "#/properties/n/multipleOf",
    ],
    ["uniqueItems", { type: "array", items: { type: "integer" }, uniqueItems: true }, "uniqueItems", "#/uniqueItems"],
    ["not", { not: { const: 1 } }, "not", "#/not"],
    ["allOf", { allOf: [{ type: "object" }] }, "allOf", "#/allOf"],
    ["minProperties", { type: "object", minProperties: 1 }, "minProperties", "#/minProperties"],
    ["a format", { type: "string", format: "hostname" }, "format: hostname", "#/format"],
    ["ipv4", { type: "string", format: "ipv4" }, "format: ipv4", "#/format"],
    ["date-time", { type: "string", format: "date-time" }, "format: date-time", "#/format"],
    ["email", { type: "string", format: "email" }, "format: email", "#/format"],
    ["minimum on a number", { type: "number", minimum: 0 }, 'minimum (only on "type": "integer")', "#/minimum"],
    ["exclusiveMaximum untyped", { exclusiveMaximum: 1 }, 'exclusiveMaximum (only on "type": "integer")', "#/exclusiveMaximum"],
    ["a huge bound", { type: "integer", maximum: 1e300 }, "maximum (a number within ±2^53)", "#/maximum"],
    ["minLength", { type: "string", minLength: 2 }, "minLength", "#/minLength"],
    ["a lookahead", { type: "string", pattern: "^(?=a)" }, "pattern (lookaround or backreference)", "#/pattern"],
    ["a dot", { type: "string", pattern: "^a.c$" }, "pattern (the wildcard .: spell out the characters allowed)", "#/pattern"],
    [
      "a negated class",
      { type: "string", pattern: "^[^a]+$" },
      "pattern (the wildcard [^…]: spell out the characters allowed)",
      "#/pattern",
    ],
    ["\\S", { type: "string", pattern: "^\\S+$" }, "pattern (the wildcard \\S: spell out the characters allowed)", "#/pattern"],
    ["in $defs", { $defs: { x: { type: "array", contains: { const: 1 } } } }, "contains", "#/$defs/x/contains"],
  ])("names the unsupported keyword: %s", (_, schema, keyword, path) => {
    const err = refusal(() => assertSchemaSupported(schema, "response_format"));
    expect(err.code).toBe("unsupported_schema_keyword");
    expect(err.http).toBe(400);
    expect(err.message).toBe(`response_format: JSON schema keyword "${keyword}" at ${path} is not supported by constrained decoding`);
  });

  it("checks only strict tools' schemas, and every response schema", () => {
    const loose = { name: "f", strict: false, parameters: { oneOf: [] } };
    expect(() => validateConstraintSpec(spec({ tools: [loose] }))).not.toThrow();
    expect(refusal(() => validateConstraintSpec(spec({ tools: [{ ...loose, strict: true }] }))).message).toContain("tools[0].parameters");
  });
});
