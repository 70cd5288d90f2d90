import { type ConstraintSpec, parseConstraintSpec } from "@expertmesh/grammar/spec";
import { describe, expect, it } from "vitest";
import { thrownAppError } from "../../testing/thrown-app-error.ts";
import {
  buildConstraintSpec,
  CHAT_FIELDS,
  type ConstraintRequest,
  checkedConstraint,
  type DeclaredTool,
  RESPONSES_FIELDS,
} from "./constraint-builder.ts";

const weatherParams = { type: "object", properties: { city: { type: "string" } }, required: ["city"] };
const weather: DeclaredTool = { name: "get_weather", strict: true, parameters: weatherParams };
const lookup: DeclaredTool = { name: "lookup", strict: false, parameters: undefined };

const request = (over: Partial<ConstraintRequest> = {}): ConstraintRequest => ({
  guard: true,
  tools: [],
  toolChoice: { kind: "auto" },
  format: null,
  ...over,
});

const refusal = thrownAppError;

/** The spec as the worker will read it back from the wire. */
function wire(req: ConstraintRequest, fields = CHAT_FIELDS): ConstraintSpec | undefined {
  const c = checkedConstraint(buildConstraintSpec(req), fields);
  if (!c) return undefined;
  expect(c.version).toBe(1);
  return parseConstraintSpec(JSON.parse(c.specJson));
}

describe("buildConstraintSpec", () => {
  it("maps tools (strict only when true; no parameters: an empty object), tool_choice and the guard", () => {
    expect(wire(request({ tools: [weather, lookup], toolChoice: { kind: "function", name: "lookup" } }))).toEqual({
      version: 1,
      guard: true,
      tools: [
        { name: "get_weather", strict: true, parameters: weatherParams },
        { name: "lookup", strict: false, parameters: { type: "object", properties: {} } },
      ],
      toolChoice: { kind: "function", name: "lookup" },
      finalFormat: { kind: "text" },
    });
  });

  it("maps response formats: text, json_object, json_schema (enforced whether strict or not; no schema: any JSON)", () => {
    expect(wire(request({ format: { type: "text" } }))?.finalFormat).toEqual({ kind: "text" });
    expect(wire(request({ format: { type: "json_object" } }))?.finalFormat).toEqual({ kind: "json_object" });
    const schema = { type: "object", properties: { n: { type: "integer", minimum: 0 } } };
    expect(wire(request({ format: { type: "json_schema", name: "count", schema } }))?.finalFormat).toEqual({
      kind: "json_schema",
      name: "count",
      schema,
    });
    expect(wire(request({ format: { type: "json_schema", name: "any" } }))?.finalFormat).toEqual({
      kind: "json_schema",
      name: "any",
      schema: {},
    });
  });

  it("with tool_choice none carries no tools: a strict schema that cannot be called is not checked", () => {
    const odd: DeclaredTool = { name: "odd", strict: true, parameters: { oneOf: [{ type: "string" }] } };
    expect(wire(request({ tools: [odd], toolChoice: { kind: "none" } }))?.tools).toEqual([]);
  });

  it("is no constraint at all with the guard off and nothing forced, strict or formatted", () => {
    expect(wire(request({ guard: false, tools: [lookup] }))).toBeUndefined();
    expect(wire(request({ guard: false, format: { type: "text" } }))).toBeUndefined();
    expect(wire(request({ guard: false, tools: [weather], toolChoice: { kind: "none" } }))).toBeUndefined();
    // Each of these still constrains with the guard off.
    expect(wire(request({ guard: false, tools: [weather] }))?.guard).toBe(false);
    expect(wire(request({ guard: false, tools: [lookup], toolChoice: { kind: "required" } }))?.toolChoice).toEqual({ kind: "required" });
    expect(wire(request({ guard: false, format: { type: "json_object" } }))?.finalFormat).toEqual({ kind: "json_object" });
  });
});

describe("checkedConstraint refusals (400 with the request's param)", () => {
  it("an unsupported keyword in a strict tool's parameters names the tool's field in each API, and the keyword", () => {
    const odd: DeclaredTool = { name: "odd", strict: true, parameters: { type: "object", properties: { x: { oneOf: [] } } } };
    const chat = refusal(() => wire(request({ tools: [weather, lookup, odd] })));
    expect(chat.http).toBe(400);
    expect(chat.toOpenAi().error).toMatchObject({
      type: "invalid_request_error",
      code: "unsupported_schema_keyword",
      param: "tools[2].function.parameters",
    });
    expect(chat.message).toContain('"oneOf"');
    expect(chat.message).toContain("#/properties/x/oneOf");
    const responses = refusal(() => wire(request({ tools: [weather, lookup, odd] }), RESPONSES_FIELDS));
    expect(responses.param).toBe("tools[2].parameters");
    // Not strict: the arguments are free, so the schema is only rendered, never enforced.
    expect(wire(request({ tools: [{ ...odd, strict: false }] }))?.tools[0]?.strict).toBe(false);
  });

  it("an unsupported keyword in a json_schema format names the format's schema field", () => {
    const format = { type: "json_schema" as const, name: "f", schema: { type: "string", minLength: 3 } };
    const chat = refusal(() => wire(request({ format })));
    expect(chat.code).toBe("unsupported_schema_keyword");
    expect(chat.param).toBe("response_format.json_schema.schema");
    expect(chat.message).toContain('"minLength"');
    expect(refusal(() => wire(request({ format }), RESPONSES_FIELDS)).param).toBe("text.format.schema");
    const number = { type: "json_schema" as const, name: "f", schema: { type: "number", maximum: 3 } };
    expect(refusal(() => wire(request({ format: number }))).message).toContain('maximum (only on "type": "integer")');
  });

  it("an undeclared named tool, required without tools and bad or repeated names name their fields", () => {
    const named = refusal(() => wire(request({ tools: [weather], toolChoice: { kind: "function", name: "nope" } })));
    expect(named.toOpenAi().error).toMatchObject({ code: "invalid_request_error", param: "tool_choice" });
    expect(named.message).toContain('"nope"');
    expect(refusal(() => wire(request({ toolChoice: { kind: "required" } }))).param).toBe("tool_choice");
    const badName = refusal(() => wire(request({ tools: [lookup, { ...lookup, name: "has space" }] })));
    expect(badName.param).toBe("tools[1].function.name");
    expect(refusal(() => wire(request({ tools: [lookup, { ...lookup, name: "a.b" }] }), RESPONSES_FIELDS)).param).toBe("tools[1].name");
    expect(refusal(() => wire(request({ tools: [lookup, lookup] }))).message).toContain("declared twice");
  });

  it("a schema nested past the grammar engine's limits names its field (400 invalid_request_error)", () => {
    let deep: object = { type: "string" };
    for (let i = 0; i < 40; i++) deep = { type: "object", properties: { a: deep } };
    const err = refusal(() => wire(request({ tools: [{ name: "deep", strict: true, parameters: deep as DeclaredTool["parameters"] }] })));
    expect(err.http).toBe(400);
    expect(err.toOpenAi().error).toMatchObject({
      type: "invalid_request_error",
      code: "invalid_request_error",
      param: "tools[0].function.parameters",
    });
    expect(err.message).toContain("nests deeper than 32 subschemas");
  });

  it("a spec over the size bound is refused naming tools", () => {
    const big = { type: "object", description: "x".repeat(300 * 1024) };
    const err = refusal(() => wire(request({ tools: [{ name: "big", strict: false, parameters: big }] })));
    expect(err.param).toBe("tools");
    expect(err.message).toContain("bytes");
  });
});
