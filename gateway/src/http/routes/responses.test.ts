import { HarmonyTokenizer } from "@expertmesh/grammar/tokenizer";
import OpenAI from "openai";
import type { ResponseFunctionCallArgumentsDoneEvent, ResponseStreamEvent } from "openai/resources/responses/responses";
import { afterEach, describe, expect, it } from "vitest";
import { RedisResponseStore } from "../../adapters/redis-response-store.ts";
import { MemoryResponseStore, type ResponseStore } from "../../domain/responses/store.ts";
import { redisForFile } from "../../testing/redis-for-file.ts";
import { type ScriptedWorker, startScriptedWorker } from "../../testing/scripted-worker.ts";
import { startTestGateway } from "../../testing/test-gateway.ts";

const tok = new HarmonyTokenizer();
const out = (s: string) => tok.encodeWithSpecials(s);
let cleanup: Array<() => Promise<void> | void> = [];
const redis = redisForFile();
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

async function gateway(
  scripts: number[][],
  store: ResponseStore = new MemoryResponseStore(),
): Promise<{ client: OpenAI; worker: ScriptedWorker }> {
  const worker = await startScriptedWorker(scripts);
  const gw = await startTestGateway({ address: worker.address, model: "gpt-oss-20b", tokenizer: tok, deps: { responses: store } });
  cleanup.push(
    () => worker.close(),
    () => gw.close(),
  );
  return { client: new OpenAI({ apiKey: "unused", baseURL: `${gw.base}/v1`, maxRetries: 0 }), worker };
}

const weather = {
  type: "function" as const,
  name: "get_weather",
  description: "Gets the weather",
  parameters: { type: "object", properties: { location: { type: "string" } }, required: ["location"] },
  strict: false,
};

describe("Responses API (scripted model output)", () => {
  it("create, retrieve, delete: reasoning and message items, usage with reasoning tokens", async () => {
    const { client, worker } = await gateway([
      out("<|channel|>analysis<|message|>User greets.<|end|><|start|>assistant<|channel|>final<|message|>Hello there!<|return|>"),
    ]);
    const r = await client.responses.create({ model: "gpt-oss-20b", input: "Hi", instructions: "Be brief.", reasoning: { effort: "low" } });
    expect(r.status).toBe("completed");
    expect(r.output_text).toBe("Hello there!");
    expect(r.output.map((i) => i.type)).toEqual(["reasoning", "message"]);
    const reasoning = r.output[0] as { content: Array<{ text: string }> };
    expect(reasoning.content[0]?.text).toBe("User greets.");
    expect(r.usage?.output_tokens_details.reasoning_tokens).toBeGreaterThan(0);
    expect(r.usage?.input_tokens).toBe(worker.requests[0]?.promptTokenIds.length);
    const prompt = tok.decode(worker.requests[0]?.promptTokenIds ?? []);
    expect(prompt).toContain("Reasoning: low");
    expect(prompt).toContain("<|start|>developer<|message|># Instructions\n\nBe brief.");

    const again = await client.responses.retrieve(r.id);
    expect(again.output_text).toBe("Hello there!");
    expect(again.id).toBe(r.id);
    await client.responses.delete(r.id);
    await expect(client.responses.retrieve(r.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(client.responses.delete(r.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });

  it("ignores sampling fields outside the Responses API, whatever their type (found by the R6 fuzz: a 500)", async () => {
    const { client } = await gateway([out("<|channel|>final<|message|>Hi.<|return|>")]);
    const body = { model: "gpt-oss-20b", input: "Hi", seed: { toString: 0 }, top_k: "x", logit_bias: 5 };
    const r = await client.responses.create(body as unknown as OpenAI.Responses.ResponseCreateParamsNonStreaming);
    expect(r.status).toBe("completed");
    expect(r.output_text).toBe("Hi.");
  });

  it("streams OpenAI's event sequence, which the SDK's stream helper accumulates", async () => {
    const { client } = await gateway([
      out("<|channel|>analysis<|message|>Think.<|end|><|start|>assistant<|channel|>final<|message|>Streamed answer.<|return|>"),
    ]);
    const types: string[] = [];
    const deltas: string[] = [];
    const s = client.responses.stream({ model: "gpt-oss-20b", input: "Hi" });
    s.on("event", (e) => types.push(e.type));
    s.on("response.output_text.delta", (e) => deltas.push(e.delta));
    const final = await s.finalResponse();
    expect(final.output_text).toBe("Streamed answer.");
    expect(deltas.join("")).toBe("Streamed answer.");
    expect(types[0]).toBe("response.created");
    expect(types[1]).toBe("response.in_progress");
    expect(types.at(-1)).toBe("response.completed");
    for (const t of [
      "response.reasoning_text.delta",
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
    ])
      expect(types).toContain(t);
    // The streamed response was stored like a non-streamed one.
    expect((await client.responses.retrieve(final.id)).output_text).toBe("Streamed answer.");
  });

  it("streams a function call's arguments as response.function_call_arguments.delta / .done, as OpenAI sends them", async () => {
    const args = '{"location":"Paris, France","unit":"celsius"}';
    const worker = await startScriptedWorker(
      [
        out(
          `<|channel|>analysis<|message|>Need weather.<|end|><|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>${args}<|call|>`,
        ),
      ],
      { tokenIntervalMs: 2 }, // one token per worker message: the arguments arrive in pieces
    );
    const gw = await startTestGateway({ address: worker.address, model: "gpt-oss-20b", tokenizer: tok });
    cleanup.push(
      () => worker.close(),
      () => gw.close(),
    );
    const client = new OpenAI({ apiKey: "unused", baseURL: `${gw.base}/v1`, maxRetries: 0 });
    const events: ResponseStreamEvent[] = [];
    const deltas: Array<{ delta: string; snapshot: string; item_id: string; output_index: number }> = [];
    const s = client.responses.stream({ model: "gpt-oss-20b", input: "Weather in Paris?", tools: [weather] });
    s.on("event", (e) => events.push(e));
    s.on("response.function_call_arguments.delta", (e) => deltas.push(e));
    const done = new Promise<ResponseFunctionCallArgumentsDoneEvent>((resolve) => s.on("response.function_call_arguments.done", resolve));
    const final = await s.finalResponse();

    const call = final.output.find((i) => i.type === "function_call");
    expect(call).toMatchObject({ type: "function_call", name: "get_weather", arguments: args, status: "completed" });
    if (call?.type !== "function_call") throw new Error("no call");
    const index = final.output.indexOf(call);
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.map((d) => d.delta).join("")).toBe(args);
    // The SDK's snapshot is the arguments so far, delta by delta.
    deltas.reduce((sofar, d) => {
      expect(d.snapshot).toBe(sofar + d.delta);
      return d.snapshot;
    }, "");
    for (const d of deltas) expect(d).toMatchObject({ item_id: call.id, output_index: index });
    expect(await done).toMatchObject({ item_id: call.id, output_index: index, name: "get_weather", arguments: args });

    // OpenAI's order for a call: the item added (empty arguments), its deltas, done, the item done; numbered in sequence.
    const mine = events.filter((e) => ("item_id" in e && e.item_id === call.id) || ("item" in e && e.item.id === call.id));
    expect(mine[0]).toMatchObject({
      type: "response.output_item.added",
      item: { type: "function_call", arguments: "", status: "in_progress" },
    });
    expect(mine.slice(1, -2).every((e) => e.type === "response.function_call_arguments.delta")).toBe(true);
    expect(mine.at(-2)?.type).toBe("response.function_call_arguments.done");
    expect(mine.at(-1)).toMatchObject({ type: "response.output_item.done", item: { arguments: args, status: "completed" } });
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
  });

  for (const [storeName, makeStore] of [
    ["memory", () => new MemoryResponseStore()],
    ["redis", () => new RedisResponseStore(redis.client, 60_000, `em:test:${Date.now()}:`)],
  ] as const) {
    it(`tool loop over previous_response_id keeps reasoning for the pending call, drops it after the answer (${storeName} store)`, async () => {
      const { client, worker } = await gateway(
        [
          out(
            '<|channel|>analysis<|message|>Need weather.<|end|><|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"location":"Paris"}<|call|>',
          ),
          out("<|channel|>analysis<|message|>Got it.<|end|><|start|>assistant<|channel|>final<|message|>It is sunny in Paris.<|return|>"),
          out("<|channel|>final<|message|>You're welcome.<|return|>"),
        ],
        makeStore(),
      );
      const r1 = await client.responses.create({ model: "gpt-oss-20b", input: "Weather in Paris?", tools: [weather] });
      const call = r1.output.find((i) => i.type === "function_call");
      expect(call).toMatchObject({ type: "function_call", name: "get_weather", arguments: '{"location":"Paris"}' });
      if (call?.type !== "function_call") throw new Error("no call");

      const r2 = await client.responses.create({
        model: "gpt-oss-20b",
        previous_response_id: r1.id,
        tools: [weather],
        input: [{ type: "function_call_output", call_id: call.call_id, output: '{"sky":"clear"}' }],
      });
      expect(r2.output_text).toBe("It is sunny in Paris.");
      expect(r2.previous_response_id).toBe(r1.id);
      const p2 = tok.decode(worker.requests[1]?.promptTokenIds ?? []);
      expect(p2).toContain("<|start|>user<|message|>Weather in Paris?<|end|>");
      expect(p2).toContain("<|channel|>analysis<|message|>Need weather.<|end|>");
      expect(p2).toContain('to=functions.get_weather<|channel|>commentary <|constrain|>json<|message|>{"location":"Paris"}<|call|>');
      expect(p2).toContain('<|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>{"sky":"clear"}<|end|>');

      const r3 = await client.responses.create({ model: "gpt-oss-20b", previous_response_id: r2.id, input: "Thanks!" });
      expect(r3.output_text).toBe("You're welcome.");
      const p3 = tok.decode(worker.requests[2]?.promptTokenIds ?? []);
      expect(p3).toContain("<|channel|>final<|message|>It is sunny in Paris.<|end|>");
      expect(p3).toContain("<|start|>user<|message|>Thanks!<|end|>");
      expect(p3).not.toContain("Need weather.");
      expect(p3).not.toContain("Got it.");
    });
  }

  it("typed errors: unknown previous_response_id (400 with param), output of an unknown call, built-in tools", async () => {
    const { client } = await gateway([]);
    const err = await client.responses.create({ model: "gpt-oss-20b", input: "x", previous_response_id: "resp_nope" }).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.param).toBe("previous_response_id");
    const err2 = await client.responses
      .create({ model: "gpt-oss-20b", input: [{ type: "function_call_output", call_id: "call_x", output: "1" }] })
      .catch((e) => e);
    expect(err2).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err2.param).toBe("input[0].call_id");
    const err3 = await client.responses.create({ model: "gpt-oss-20b", input: "x", tools: [{ type: "web_search" }] }).catch((e) => e);
    expect(err3).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err3.param).toBe("tools[0].type");
  });
});
