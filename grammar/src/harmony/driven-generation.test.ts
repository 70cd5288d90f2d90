/**
 * Driven generation: no model, a seeded random pick among the tokens each mask allows (see
 * testing/driven-generation.ts), 200 seeds per case at the full vocabulary. Whatever the picks, the
 * output must satisfy the constraint: final-channel JSON that ajv validates against the schema, and
 * with tool_choice required or named only calls to the allowed functions with valid arguments.
 */
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { beforeAll, describe, expect, it } from "vitest";
import { ConstraintCompiler } from "../engine/compiler.ts";
import type { ConstraintSpec, FunctionToolSpec } from "../spec/constraint-spec.ts";
import { drive, headerParts, type ParsedMessage, seededRandom, splitMessages } from "../testing/driven-generation.ts";
import { TEST_SCHEMAS } from "../testing/schemas.ts";
import { HarmonyToken as T } from "./markers.ts";

const SEEDS = 200;
const MAX_TOKENS = 4000;

const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats.default(ajv);

let compiler: ConstraintCompiler;

beforeAll(async () => {
  compiler = await ConstraintCompiler.create();
});

async function generate(spec: ConstraintSpec, seed: number): Promise<ParsedMessage[]> {
  const compiled = await compiler.compile(spec);
  if (!compiled) throw new Error("spec compiled to nothing");
  const matcher = await compiler.matcher(compiled);
  try {
    const { tokens, terminated } = await drive(matcher, seededRandom(seed), { maxTokens: MAX_TOKENS });
    expect(terminated, `seed ${seed} did not finish in ${MAX_TOKENS} tokens`).toBe(true);
    return splitMessages(tokens);
  } finally {
    matcher.dispose();
  }
}

/** The header's channel and recipient; fails the test on any header outside Harmony's valid forms. */
function parseHeader(header: string): { channel: string; recipient: string | undefined } {
  const parts = headerParts(header);
  expect(parts, `malformed header ${JSON.stringify(header)}`).not.toBeNull();
  return parts as NonNullable<typeof parts>;
}

describe("response_format json_schema: final content validates", () => {
  it.each(Object.keys(TEST_SCHEMAS))("%s, 200 seeds", async (name) => {
    const schema = TEST_SCHEMAS[name] as Record<string, unknown>;
    const validate = ajv.compile(schema);
    const spec: ConstraintSpec = {
      version: 1,
      guard: true,
      tools: [],
      toolChoice: { kind: "auto" },
      finalFormat: { kind: "json_schema", name, schema },
    };
    for (let seed = 0; seed < SEEDS; seed++) {
      const messages = await generate(spec, seed);
      const last = messages.at(-1) as ParsedMessage;
      for (const msg of messages) parseHeader(msg.header);
      expect(parseHeader(last.header).channel).toBe("final");
      expect(last.terminator).toBe(T.return);
      const value = JSON.parse(last.content);
      expect(validate(value), `seed ${seed}: ${last.content} ${ajv.errorsText(validate.errors)}`).toBe(true);
    }
  });
});

describe("response_format json_object: final content is a JSON object", () => {
  it("200 seeds", async () => {
    const spec: ConstraintSpec = { version: 1, guard: true, tools: [], toolChoice: { kind: "auto" }, finalFormat: { kind: "json_object" } };
    for (let seed = 0; seed < SEEDS; seed++) {
      const last = (await generate(spec, seed)).at(-1) as ParsedMessage;
      expect(parseHeader(last.header).channel).toBe("final");
      const value = JSON.parse(last.content);
      expect(typeof value === "object" && value !== null && !Array.isArray(value), `seed ${seed}: ${last.content}`).toBe(true);
    }
  });
});

const TOOLS: FunctionToolSpec[] = [
  { name: "get_weather", strict: true, parameters: TEST_SCHEMAS.nested_objects as Record<string, unknown> },
  { name: "book", strict: true, parameters: TEST_SCHEMAS.integer_bounds as Record<string, unknown> },
  { name: "search", strict: false, parameters: { type: "object", properties: { q: { type: "string" } } } },
];

/** The last message is a call to one of `allowed`; strict arguments validate, forced ones are a JSON object. */
function expectValidCall(last: ParsedMessage, allowed: string[], seed: number, forced = true): string {
  const { recipient } = parseHeader(last.header);
  expect(last.terminator, `seed ${seed} ended without <|call|>`).toBe(T.call);
  expect(allowed, `seed ${seed} called ${recipient}`).toContain(recipient);
  const tool = TOOLS.find((t) => t.name === recipient) as FunctionToolSpec;
  const args = tool.strict || forced ? JSON.parse(last.content) : last.content;
  if (tool.strict) expect(ajv.validate(tool.parameters as object, args), `seed ${seed}: ${last.content}`).toBe(true);
  else if (forced) expect(typeof args === "object" && args !== null && !Array.isArray(args)).toBe(true);
  return recipient as string;
}

describe("tool_choice", () => {
  const base: ConstraintSpec = { version: 1, guard: true, tools: TOOLS, toolChoice: { kind: "auto" }, finalFormat: { kind: "text" } };

  it("required: every generation calls a declared function with valid arguments", async () => {
    const called = new Set<string>();
    for (let seed = 0; seed < SEEDS; seed++) {
      const messages = await generate({ ...base, toolChoice: { kind: "required" } }, seed);
      called.add(expectValidCall(messages.at(-1) as ParsedMessage, ["get_weather", "book", "search"], seed));
    }
    expect(called.size).toBe(3); // the mask leaves every declared function reachable
  });

  it.each(["get_weather", "search"])("named %s: every generation calls it, with valid arguments", async (name) => {
    for (let seed = 0; seed < SEEDS; seed++) {
      const messages = await generate({ ...base, toolChoice: { kind: "function", name } }, seed);
      expectValidCall(messages.at(-1) as ParsedMessage, [name], seed);
    }
  });

  it("none: every generation ends in a final answer", async () => {
    for (let seed = 0; seed < SEEDS; seed++) {
      const messages = await generate({ ...base, toolChoice: { kind: "none" } }, seed);
      const last = messages.at(-1) as ParsedMessage;
      expect(parseHeader(last.header)).toEqual({ channel: "final", recipient: undefined });
      expect(last.terminator).toBe(T.return);
    }
  });

  it("auto with the guard: headers are always well formed and strict arguments valid", async () => {
    for (let seed = 0; seed < SEEDS; seed++) {
      const messages = await generate(base, seed);
      const last = messages.at(-1) as ParsedMessage;
      for (const msg of messages.slice(0, -1)) expect(parseHeader(msg.header).recipient).toBeUndefined();
      if (last.terminator === T.call) expectValidCall(last, ["get_weather", "book", "search"], seed, false);
      else expect(parseHeader(last.header).channel).toBe("final");
    }
  });
});
