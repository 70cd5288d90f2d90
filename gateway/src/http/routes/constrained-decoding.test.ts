/**
 * Constrained decoding through the gateway (issue #24): the official openai SDK against the real server,
 * a scripted worker standing in for the engine. What is checked is the gateway's part: the constraint
 * spec and reasoning budget each OpenAI field puts on the GenerateRequest, the 400s for what cannot be
 * enforced (before any worker sees the request), and `reasoning_truncated` / incomplete reasoning items
 * when the worker says its budget cut the analysis. The worker's enforcement is tested with the worker.
 */
import type { ConstraintSpec } from "@expertmesh/grammar/spec";
import { HarmonyTokenizer, Special } from "@expertmesh/grammar/tokenizer";
import type { GenerateRequest } from "@expertmesh/proto/worker";
import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import { closeScriptedGateways, scriptedGateway } from "../../testing/scripted-gateway.ts";
import type { ScriptOptions } from "../../testing/scripted-worker.ts";

const tok = new HarmonyTokenizer();
const out = (s: string) => tok.encodeWithSpecials(s);
const MODEL = "gpt-oss-20b";
const user = (content: string) => [{ role: "user" as const, content }];

afterEach(() => closeScriptedGateways());

const gateway = (scripts: number[][], o: { config?: Record<string, unknown>; worker?: ScriptOptions } = {}) =>
  scriptedGateway(tok, scripts, o);

/** The spec a GenerateRequest carries, as the worker will parse it (undefined: no constraint sent). */
function specOf(r: GenerateRequest | undefined): ConstraintSpec | undefined {
  if (!r?.constraint) return undefined;
  expect(r.constraint.version).toBe(1);
  return JSON.parse(r.constraint.specJson) as ConstraintSpec;
}

/** Extension fields the SDK's types do not know, sent as part of the body all the same. */
const extended = <T>(params: T, extensions: Record<string, unknown>): T => ({ ...params, ...extensions });

const ANSWER = out("<|channel|>analysis<|message|>Easy.<|end|><|start|>assistant<|channel|>final<|message|>Fine.<|return|>");
const CALL = out('<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city":"Oslo"}<|call|>');
const weatherParams = { type: "object", properties: { city: { type: "string" } }, required: ["city"] };
const chatWeather = { type: "function" as const, function: { name: "get_weather", parameters: weatherParams, strict: true } };
const chatClock = { type: "function" as const, function: { name: "get_time" } };

/** A reasoning budget's cut, as the worker streams it: the analysis ends with a forced <|end|> and the final header. */
const CUT = out(
  "<|channel|>analysis<|message|>Let me think about this for a long<|end|><|start|>assistant<|channel|>final<|message|>42<|return|>",
);
const cutAt = CUT.indexOf(Special.end);
const FORCED = Array.from({ length: CUT.indexOf(Special.message, cutAt) - cutAt + 1 }, (_, i) => cutAt + i);

async function badRequest(p: Promise<unknown>): Promise<InstanceType<typeof OpenAI.BadRequestError>> {
  const err = await p.catch((e: unknown) => e);
  expect(err).toBeInstanceOf(OpenAI.BadRequestError);
  return err as InstanceType<typeof OpenAI.BadRequestError>;
}

describe("chat completions → the constraint spec", () => {
  it("guards Harmony by default: a plain request carries the guard only, and no reasoning budget", async () => {
    const { client, worker } = await gateway([ANSWER]);
    await client.chat.completions.create({ model: MODEL, messages: user("Hi") });
    expect(specOf(worker.requests[0])).toEqual({
      version: 1,
      guard: true,
      tools: [],
      toolChoice: { kind: "auto" },
      finalFormat: { kind: "text" },
    });
    expect(worker.requests[0]?.maxReasoningTokens).toBe(0);
  });

  it("tool_choice required is served (no 400): strict and non-strict tools with the json_schema format", async () => {
    const { client, worker } = await gateway([CALL]);
    const schema = { type: "object", properties: { answer: { type: "string" } }, required: ["answer"] };
    const r = await client.chat.completions.create({
      model: MODEL,
      messages: user("Weather in Oslo?"),
      tools: [chatWeather, chatClock],
      tool_choice: "required",
      response_format: { type: "json_schema", json_schema: { name: "reply", schema, strict: false } },
    });
    expect(r.choices[0]?.finish_reason).toBe("tool_calls");
    expect(r.choices[0]?.message.tool_calls?.[0]).toMatchObject({ function: { name: "get_weather", arguments: '{"city":"Oslo"}' } });
    expect(specOf(worker.requests[0])).toEqual({
      version: 1,
      guard: true,
      tools: [
        { name: "get_weather", strict: true, parameters: weatherParams },
        { name: "get_time", strict: false, parameters: { type: "object", properties: {} } },
      ],
      toolChoice: { kind: "required" },
      finalFormat: { kind: "json_schema", name: "reply", schema },
    });
    // The model still sees the tools and the format in the prompt (spec §6.6, §6.11).
    const prompt = tok.decode(worker.requests[0]?.promptTokenIds ?? []);
    expect(prompt).toContain("type get_weather = (_: {\ncity: string,\n}) => any;");
    expect(prompt).toContain("# Response Formats\n\n## reply");
  });

  it("a named function and json_object; tool_choice none sends no tools and hides them", async () => {
    const { client, worker } = await gateway([CALL, ANSWER]);
    await client.chat.completions.create({
      model: MODEL,
      messages: user("Weather?"),
      tools: [chatClock, chatWeather],
      tool_choice: { type: "function", function: { name: "get_weather" } },
      response_format: { type: "json_object" },
    });
    expect(specOf(worker.requests[0])).toMatchObject({
      toolChoice: { kind: "function", name: "get_weather" },
      finalFormat: { kind: "json_object" },
    });
    await client.chat.completions.create({ model: MODEL, messages: user("Hi"), tools: [chatWeather], tool_choice: "none" });
    expect(specOf(worker.requests[1])).toMatchObject({ tools: [], toolChoice: { kind: "none" } });
    expect(tok.decode(worker.requests[1]?.promptTokenIds ?? [])).not.toContain("get_weather");
  });

  it("harmony_guard: off per request or per deployment sends no constraint; a request may turn it back on", async () => {
    const { client, worker } = await gateway([ANSWER, ANSWER, ANSWER]);
    await client.chat.completions.create(extended({ model: MODEL, messages: user("Hi") }, { harmony_guard: false }));
    expect(worker.requests[0]?.constraint).toBeUndefined();
    // Off, yet a strict tool still needs the constraint.
    await client.chat.completions.create(extended({ model: MODEL, messages: user("Hi"), tools: [chatWeather] }, { harmony_guard: false }));
    expect(specOf(worker.requests[1])).toMatchObject({ guard: false, tools: [{ name: "get_weather", strict: true }] });

    const off = await gateway([ANSWER, ANSWER], { config: { harmony_guard: false } });
    await off.client.chat.completions.create({ model: MODEL, messages: user("Hi"), tools: [chatClock] });
    expect(off.worker.requests[0]?.constraint).toBeUndefined();
    await off.client.chat.completions.create(extended({ model: MODEL, messages: user("Hi") }, { harmony_guard: true }));
    expect(specOf(off.worker.requests[1])?.guard).toBe(true);
  });

  it("max_reasoning_tokens, else the deployment's default for the reasoning effort", async () => {
    const { client, worker } = await gateway([ANSWER, ANSWER, ANSWER], {
      config: { reasoning_budget: { low: 32, medium: 128, high: 512 } },
    });
    await client.chat.completions.create(extended({ model: MODEL, messages: user("Hi"), max_tokens: 200 }, { max_reasoning_tokens: 64 }));
    await client.chat.completions.create({ model: MODEL, messages: user("Hi"), reasoning_effort: "high" });
    await client.chat.completions.create({ model: MODEL, messages: user("Hi") });
    expect(worker.requests.map((r) => r.maxReasoningTokens)).toEqual([64, 512, 128]);
  });
});

describe("chat completions → 400 before any worker sees the request", () => {
  it("an unsupported schema keyword names the field and the keyword", async () => {
    const { client, worker } = await gateway([]);
    const format = await badRequest(
      client.chat.completions.create({
        model: MODEL,
        messages: user("x"),
        response_format: {
          type: "json_schema",
          json_schema: { name: "r", schema: { type: "object", properties: { v: { oneOf: [{ type: "string" }, { type: "integer" }] } } } },
        },
      }),
    );
    expect(format.code).toBe("unsupported_schema_keyword");
    expect(format.param).toBe("response_format.json_schema.schema");
    expect(format.message).toContain('JSON schema keyword "oneOf" at #/properties/v/oneOf');
    const odd = { type: "function" as const, function: { name: "odd", parameters: { type: "string", minLength: 2 }, strict: true } };
    const tool = await badRequest(
      client.chat.completions.create({ model: MODEL, messages: user("x"), tools: [chatClock, chatWeather, odd] }),
    );
    expect(tool.param).toBe("tools[2].function.parameters");
    expect(tool.message).toContain('"minLength"');
    expect(worker.requests).toHaveLength(0);
  });

  it("an undeclared named tool, an unknown tool_choice shape, and a budget that leaves the answer no room", async () => {
    const { client, worker } = await gateway([]);
    const named = await badRequest(
      client.chat.completions.create({
        model: MODEL,
        messages: user("x"),
        tools: [chatWeather],
        tool_choice: { type: "function", function: { name: "get_stock" } },
      }),
    );
    expect(named.param).toBe("tool_choice");
    expect(named.message).toContain('"get_stock"');
    const shape = await badRequest(
      client.chat.completions.create(extended({ model: MODEL, messages: user("x"), tools: [chatWeather] }, { tool_choice: "always" })),
    );
    expect(shape.param).toBe("tool_choice");
    const budget = await badRequest(
      client.chat.completions.create(
        extended({ model: MODEL, messages: user("x"), max_completion_tokens: 100 }, { max_reasoning_tokens: 100 }),
      ),
    );
    expect(budget.param).toBe("max_reasoning_tokens");
    expect(budget.message).toContain("must be less than max_completion_tokens (100)");
    expect(worker.requests).toHaveLength(0);
  });
});

describe("chat completions: reasoning_truncated", () => {
  it("is on the choice when the budget cut the reasoning; forced tokens read like any other", async () => {
    const { client } = await gateway([CUT], { worker: { forcedPositions: FORCED, reasoningTruncated: true } });
    const r = await client.chat.completions.create(extended({ model: MODEL, messages: user("Why?") }, { max_reasoning_tokens: 8 }));
    const choice = r.choices[0] as unknown as Record<string, unknown> & { message: { content: string; reasoning_content: string } };
    expect(choice.message.content).toBe("42");
    expect(choice.message.reasoning_content).toBe("Let me think about this for a long");
    expect(choice.reasoning_truncated).toBe(true);
    expect(choice.finish_reason).toBe("stop");
  });

  it("streams it in the chunk with the finish_reason only", async () => {
    const { client } = await gateway([CUT], { worker: { forcedPositions: FORCED, reasoningTruncated: true } });
    const stream = await client.chat.completions.create(extended({ model: MODEL, messages: user("Why?"), stream: true as const }, {}));
    const flagged: Array<Record<string, unknown>> = [];
    for await (const c of stream)
      for (const ch of c.choices) if ("reasoning_truncated" in ch) flagged.push(ch as unknown as Record<string, unknown>);
    expect(flagged).toEqual([expect.objectContaining({ reasoning_truncated: true, finish_reason: "stop" })]);
  });

  it("is absent otherwise: the choice keeps OpenAI's shape, streamed or not", async () => {
    const { client } = await gateway([ANSWER, ANSWER]);
    const r = await client.chat.completions.create({ model: MODEL, messages: user("Hi") });
    expect(Object.keys(r.choices[0] ?? {}).sort()).toEqual(["finish_reason", "index", "logprobs", "message"]);
    const stream = await client.chat.completions.create({ model: MODEL, messages: user("Hi"), stream: true });
    for await (const c of stream) for (const ch of c.choices) expect(ch).not.toHaveProperty("reasoning_truncated");
  });
});

describe("Responses → the constraint spec", () => {
  const weather = { type: "function" as const, name: "get_weather", parameters: weatherParams, strict: true };

  it("a named function ({type, name}), text.format json_schema and reasoning.max_tokens", async () => {
    const { client, worker } = await gateway([CALL]);
    const schema = { type: "object", properties: { n: { type: "integer", minimum: 0, maximum: 9 } } };
    const r = await client.responses.create(
      extended(
        {
          model: MODEL,
          input: "Weather in Oslo?",
          tools: [weather],
          tool_choice: { type: "function" as const, name: "get_weather" },
          text: { format: { type: "json_schema" as const, name: "digit", schema, strict: true } },
          max_output_tokens: 300,
        },
        { reasoning: { effort: "low", max_tokens: 100 } },
      ),
    );
    expect(r.output.find((i) => i.type === "function_call")).toMatchObject({ name: "get_weather", arguments: '{"city":"Oslo"}' });
    expect(r.tool_choice).toEqual({ type: "function", name: "get_weather" });
    expect(specOf(worker.requests[0])).toEqual({
      version: 1,
      guard: true,
      tools: [{ name: "get_weather", strict: true, parameters: weatherParams }],
      toolChoice: { kind: "function", name: "get_weather" },
      finalFormat: { kind: "json_schema", name: "digit", schema },
    });
    expect(worker.requests[0]?.maxReasoningTokens).toBe(100);
  });

  it("400s: unsupported text.format keyword, undeclared named tool, budget ≥ max_output_tokens", async () => {
    const { client, worker } = await gateway([]);
    const format = await badRequest(
      client.responses.create({
        model: MODEL,
        input: "x",
        text: { format: { type: "json_schema", name: "f", schema: { type: "object", patternProperties: {} }, strict: false } },
      }),
    );
    expect(format).toMatchObject({ code: "unsupported_schema_keyword", param: "text.format.schema" });
    expect(format.message).toContain('"patternProperties"');
    const strictTool = { ...weather, parameters: { type: "object", properties: { d: { type: "string", format: "date" } } } };
    const tool = await badRequest(client.responses.create({ model: MODEL, input: "x", tools: [strictTool] }));
    expect(tool.param).toBe("tools[0].parameters");
    expect(tool.message).toContain("format: date");
    const named = await badRequest(
      client.responses.create({ model: MODEL, input: "x", tools: [weather], tool_choice: { type: "function", name: "nope" } }),
    );
    expect(named.param).toBe("tool_choice");
    const budget = await badRequest(
      client.responses.create(extended({ model: MODEL, input: "x", max_output_tokens: 50 }, { reasoning: { max_tokens: 80 } })),
    );
    expect(budget.param).toBe("reasoning.max_tokens");
    expect(budget.message).toContain("max_output_tokens (50)");
    expect(worker.requests).toHaveLength(0);
  });

  it("harmony_guard false sends no constraint", async () => {
    const { client, worker } = await gateway([ANSWER]);
    await client.responses.create(extended({ model: MODEL, input: "Hi" }, { harmony_guard: false }));
    expect(worker.requests[0]?.constraint).toBeUndefined();
  });
});

describe("Responses: a reasoning item the budget cut is incomplete", () => {
  it("streamed: its output_item.done says incomplete; the answer and the response complete", async () => {
    const { client } = await gateway([CUT], { worker: { forcedPositions: FORCED, reasoningTruncated: true } });
    const stream = await client.responses.create(
      extended({ model: MODEL, input: "Why?", stream: true as const }, { reasoning: { max_tokens: 8 } }),
    );
    const done: Array<{ type: string; status?: string }> = [];
    let final: OpenAI.Responses.Response | undefined;
    for await (const e of stream) {
      if (e.type === "response.output_item.done") done.push(e.item as { type: string; status?: string });
      if (e.type === "response.completed") final = e.response;
    }
    expect(done.map((i) => [i.type, i.status])).toEqual([
      ["reasoning", "incomplete"],
      ["message", "completed"],
    ]);
    expect(final?.status).toBe("completed");
    expect(final?.output.map((i) => (i as { status?: string }).status)).toEqual(["incomplete", "completed"]);
    expect(final?.output[1]).toMatchObject({ type: "message", content: [{ type: "output_text", text: "42" }] });
  });

  it("not streamed, and when only the finish says so; without truncation the item is completed", async () => {
    const cut = await gateway([CUT], { worker: { reasoningTruncated: true } });
    const r = await cut.client.responses.create({ model: MODEL, input: "Why?" });
    expect(r.output.map((i) => [i.type, (i as { status?: string }).status])).toEqual([
      ["reasoning", "incomplete"],
      ["message", "completed"],
    ]);
    const whole = await gateway([CUT]);
    const w = await whole.client.responses.create({ model: MODEL, input: "Why?" });
    expect(w.output.map((i) => (i as { status?: string }).status)).toEqual(["completed", "completed"]);
  });
});

describe("/v1/completions stays unconstrained", () => {
  it("sends no constraint and no budget, whatever the deployment's defaults", async () => {
    const { client, worker } = await gateway([tok.encode("raw")], { config: { reasoning_budget: { medium: 64 } } });
    await client.completions.create({ model: MODEL, prompt: "Once", max_tokens: 4 });
    expect(worker.requests[0]?.constraint).toBeUndefined();
    expect(worker.requests[0]?.maxReasoningTokens).toBe(0);
  });
});
