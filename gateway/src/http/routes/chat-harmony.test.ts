import { HarmonyTokenizer } from "@expertmesh/grammar/tokenizer";
import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import { closeScriptedGateways, scriptedGateway } from "../../testing/scripted-gateway.ts";
import { startScriptedWorker } from "../../testing/scripted-worker.ts";
import { startTestGateway } from "../../testing/test-gateway.ts";

const tok = new HarmonyTokenizer();
const out = (s: string) => tok.encodeWithSpecials(s);
let cleanup: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  await closeScriptedGateways();
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

const gateway = (scripts: number[][]) => scriptedGateway(tok, scripts);

const weatherTool = {
  type: "function" as const,
  function: {
    name: "get_weather",
    description: "Gets the weather",
    parameters: { type: "object", properties: { location: { type: "string" } }, required: ["location"] },
  },
};

describe("Harmony through the gateway (scripted model output)", () => {
  it("reasoning then final: reasoning separated from content, stop on <|return|>", async () => {
    const { client } = await gateway([
      out("<|channel|>analysis<|message|>User greets.<|end|><|start|>assistant<|channel|>final<|message|>Hello there!<|return|>"),
    ]);
    const r = await client.chat.completions.create({ model: "gpt-oss-20b", messages: [{ role: "user", content: "Hi" }] });
    const m = r.choices[0]?.message as unknown as { content: string; reasoning_content: string; reasoning: string };
    expect(m.content).toBe("Hello there!");
    expect(m.reasoning_content).toBe("User greets.");
    expect(m.reasoning).toBe("User greets.");
    expect(r.choices[0]?.finish_reason).toBe("stop");
    expect(r.usage?.completion_tokens_details?.reasoning_tokens).toBeGreaterThan(0);
  });

  it("a function call streams as tool_call deltas and finishes with tool_calls", async () => {
    const { client, worker } = await gateway([
      out(
        '<|channel|>analysis<|message|>Need weather.<|end|><|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"location":"Tokyo"}<|call|>',
      ),
    ]);
    const stream = await client.chat.completions.create({
      model: "gpt-oss-20b",
      messages: [{ role: "user", content: "Weather in Tokyo?" }],
      tools: [weatherTool],
      stream: true,
    });
    let args = "";
    let name = "";
    let id = "";
    let finish: string | null | undefined = null;
    let content = "";
    for await (const c of stream) {
      const d = c.choices[0]?.delta;
      for (const tc of d?.tool_calls ?? []) {
        if (tc.id) id = tc.id;
        if (tc.function?.name) name = tc.function.name;
        args += tc.function?.arguments ?? "";
      }
      content += d?.content ?? "";
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    expect({ name, args: JSON.parse(args), finish, content }).toEqual({
      name: "get_weather",
      args: { location: "Tokyo" },
      finish: "tool_calls",
      content: "",
    });
    expect(id).toMatch(/^call_/);
    // The tools reached the prompt as the functions namespace.
    expect(tok.decode(worker.requests[0]?.promptTokenIds ?? [])).toContain("type get_weather = (_: {\nlocation: string,\n}) => any;");
  });

  it("multi-turn tool loop: analysis kept for the pending call, dropped after the final answer", async () => {
    const { client, worker } = await gateway([
      out("<|channel|>final<|message|>It is sunny.<|return|>"),
      out("<|channel|>final<|message|>You are welcome.<|return|>"),
    ]);
    const history = [
      { role: "user" as const, content: "Weather in Tokyo?" },
      {
        role: "assistant" as const,
        content: null,
        reasoning_content: "Need weather.",
        tool_calls: [{ id: "call_1", type: "function" as const, function: { name: "get_weather", arguments: '{"location":"Tokyo"}' } }],
      },
      { role: "tool" as const, tool_call_id: "call_1", content: '{"sunny":true}' },
    ];
    await client.chat.completions.create({ model: "gpt-oss-20b", messages: history as never, tools: [weatherTool] });
    const first = tok.decode(worker.requests[0]?.promptTokenIds ?? []);
    expect(first).toContain("<|start|>assistant<|channel|>analysis<|message|>Need weather.<|end|>");
    expect(first).toContain(
      '<|start|>assistant to=functions.get_weather<|channel|>commentary <|constrain|>json<|message|>{"location":"Tokyo"}<|call|>',
    );
    expect(first).toContain('<|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>{"sunny":true}<|end|>');
    expect(first.endsWith("<|start|>assistant")).toBe(true);
    await client.chat.completions.create({
      model: "gpt-oss-20b",
      messages: [...history, { role: "assistant", content: "It is sunny." }, { role: "user", content: "Thanks!" }] as never,
      tools: [weatherTool],
    });
    const second = tok.decode(worker.requests[1]?.promptTokenIds ?? []);
    expect(second).not.toContain("Need weather.");
    expect(second).toContain("<|start|>assistant<|channel|>final<|message|>It is sunny.<|end|><|start|>user<|message|>Thanks!<|end|>");
  });

  it("a commentary preamble is user-visible content before the call", async () => {
    const { client } = await gateway([
      out(
        '<|channel|>commentary<|message|>Let me check.<|end|><|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"location":"Oslo"}<|call|>',
      ),
    ]);
    const r = await client.chat.completions.create({
      model: "gpt-oss-20b",
      messages: [{ role: "user", content: "Oslo?" }],
      tools: [weatherTool],
    });
    expect(r.choices[0]?.message.content).toBe("Let me check.");
    expect(r.choices[0]?.message.tool_calls?.[0]).toMatchObject({
      type: "function",
      function: { name: "get_weather", arguments: '{"location":"Oslo"}' },
    });
    expect(r.choices[0]?.finish_reason).toBe("tool_calls");
  });

  it("malformed output is recovered as content, never a 5xx; stop strings cut the answer", async () => {
    const { client } = await gateway([
      [200007, ...tok.encode("stray text"), 200002, 200002],
      out("<|channel|>final<|message|>one two STOP three<|return|>"),
    ]);
    const garbage = await client.chat.completions.create({ model: "gpt-oss-20b", messages: [{ role: "user", content: "?" }] });
    expect(garbage.choices[0]?.message.content).toBe("stray text");
    const cut = await client.chat.completions.create({ model: "gpt-oss-20b", messages: [{ role: "user", content: "?" }], stop: ["STOP"] });
    expect(cut.choices[0]?.message.content).toBe("one two ");
    expect(cut.choices[0]?.finish_reason).toBe("stop");
  });

  it("reasoning effort reaches the system message", async () => {
    const { client, worker } = await gateway([out("<|channel|>final<|message|>ok<|return|>")]);
    await client.chat.completions.create({ model: "gpt-oss-20b", messages: [{ role: "user", content: "x" }], reasoning_effort: "high" });
    expect(tok.decode(worker.requests[0]?.promptTokenIds ?? [])).toContain("\n\nReasoning: high\n\n");
  });
});

describe("POST /v1/completions (scripted model output)", () => {
  it("returns raw text, honours stop strings, and streams", async () => {
    const { client, worker } = await gateway([tok.encode("The answer is 42. Done."), tok.encode("alpha beta gamma")]);
    const r = await client.completions.create({
      model: "gpt-oss-20b",
      prompt: "<|start|>user<|message|>Q<|end|>",
      max_tokens: 50,
      stop: [" Done"],
    });
    expect(r.object).toBe("text_completion");
    expect(r.choices[0]?.text).toBe("The answer is 42.");
    expect(r.choices[0]?.finish_reason).toBe("stop");
    expect(worker.requests[0]?.promptTokenIds.slice(0, 1)).toEqual([200006]); // specials allowed in raw prompts
    const stream = await client.completions.create({ model: "gpt-oss-20b", prompt: "x", max_tokens: 50, stream: true });
    let text = "";
    let finish: string | null | undefined;
    for await (const c of stream) {
      text += c.choices[0]?.text ?? "";
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toBe("alpha beta gamma");
    expect(finish).toBe("length");
  });
});

describe("deadlines (R5)", () => {
  it("a stalled worker: the client gets a timeout error within the deadline + 250 ms, the worker is cancelled", async () => {
    const worker = await startScriptedWorker([], { tokenIntervalMs: 60_000, fallback: out("<|channel|>final<|message|>never") });
    const gw = await startTestGateway({
      address: worker.address,
      model: "gpt-oss-20b",
      tokenizer: tok,
      config: { request_timeout_ms: 400 },
    });
    cleanup.push(
      () => worker.close(),
      () => gw.close(),
    );
    const client = new OpenAI({ apiKey: "unused", baseURL: `${gw.base}/v1`, maxRetries: 0 });
    const t0 = performance.now();
    const err = await client.chat.completions
      .create({ model: "gpt-oss-20b", messages: [{ role: "user", content: "Hi" }] })
      .catch((e: unknown) => e);
    const elapsed = performance.now() - t0;
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(504);
    expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe("timeout");
    expect(elapsed).toBeLessThan(400 + 250);
    await new Promise((r) => setTimeout(r, 100));
    expect(worker.cancelled).toHaveLength(1);
  });
});
