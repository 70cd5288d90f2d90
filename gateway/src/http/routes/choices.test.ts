/**
 * n > 1, answer-token logprobs and response_format through the whole gateway, with a scripted token
 * source in place of the worker (exact model outputs; the official openai SDK as the client).
 */

import { HarmonyTokenizer } from "@expertmesh/grammar/tokenizer";
import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import { closeScriptedGateways, scriptedGateway } from "../../testing/scripted-gateway.ts";

const tok = new HarmonyTokenizer();
const out = (s: string) => tok.encodeWithSpecials(s);
let cleanup: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  await closeScriptedGateways();
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

const gateway = (scripts: number[][]) => scriptedGateway(tok, scripts);

const answer = (reasoning: string, text: string) =>
  out(`<|channel|>analysis<|message|>${reasoning}<|end|><|start|>assistant<|channel|>final<|message|>${text}<|return|>`);

describe("n > 1", () => {
  it("runs one generation per choice with seed + i and sums usage", async () => {
    const { client, worker } = await gateway([answer("A.", "first"), answer("B.", "second")]);
    const r = await client.chat.completions.create({ model: "gpt-oss-20b", messages: [{ role: "user", content: "Hi" }], n: 2, seed: 40 });
    expect(worker.requests).toHaveLength(2);
    expect(worker.requests.map((q) => q.sampling?.seed).sort()).toEqual([40, 41]);
    expect(new Set(worker.requests.map((q) => q.requestId)).size).toBe(2);
    expect(r.choices.map((c) => c.index)).toEqual([0, 1]);
    expect(r.choices.map((c) => c.message.content).sort()).toEqual(["first", "second"]);
    const generated = answer("A.", "first").length + answer("B.", "second").length;
    expect(r.usage?.completion_tokens).toBe(generated);
    expect(r.usage?.prompt_tokens).toBe(worker.requests[0]?.promptTokenIds.length);
  });

  it("streams interleaved choices, each with its own finish chunk, then one usage chunk", async () => {
    const { client } = await gateway([answer("A.", "one two"), answer("B.", "three")]);
    const s = await client.chat.completions.create({
      model: "gpt-oss-20b",
      messages: [{ role: "user", content: "Hi" }],
      n: 2,
      stream: true,
      stream_options: { include_usage: true },
    });
    const text = ["", ""];
    const finishes: Array<string | null | undefined> = [];
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const c of s) {
      if (c.usage) usage = c.usage;
      for (const ch of c.choices) {
        text[ch.index] += ch.delta.content ?? "";
        if (ch.finish_reason) finishes[ch.index] = ch.finish_reason;
      }
    }
    expect(text.sort()).toEqual(["one two", "three"]);
    expect(finishes).toEqual(["stop", "stop"]);
    expect(usage?.completion_tokens).toBe(answer("A.", "one two").length + answer("B.", "three").length);
  });
});

describe("chat logprobs", () => {
  // The SDK's types omit `bytes` on some logprob shapes; the wire carries it on all.
  const bytesOf = (content: readonly object[]) =>
    Buffer.from(content.flatMap((t) => (t as { bytes?: number[] | null }).bytes ?? [])).toString("utf8");

  it("cover exactly the answer tokens (not reasoning, not Harmony markup)", async () => {
    const { client } = await gateway([answer("Think first.", "Héllo there!")]);
    const r = await client.chat.completions.create({
      model: "gpt-oss-20b",
      messages: [{ role: "user", content: "Hi" }],
      logprobs: true,
      top_logprobs: 0,
    });
    const content = r.choices[0]?.logprobs?.content ?? [];
    expect(bytesOf(content)).toBe("Héllo there!");
    expect(content).toHaveLength(tok.encode("Héllo there!").length);
    expect(r.choices[0]?.message.content).toBe("Héllo there!");
  });

  it("streamed with the content chunks", async () => {
    const { client } = await gateway([answer("Think.", "Streamed answer.")]);
    const s = await client.chat.completions.create({
      model: "gpt-oss-20b",
      messages: [{ role: "user", content: "Hi" }],
      logprobs: true,
      stream: true,
    });
    const all = [];
    for await (const c of s) all.push(...(c.choices[0]?.logprobs?.content ?? []));
    expect(bytesOf(all)).toBe("Streamed answer.");
  });

  it("in Responses with include message.output_text.logprobs, also on the streamed deltas", async () => {
    const { client } = await gateway([answer("Think.", "Résumé done."), answer("Think.", "Résumé done.")]);
    const r = await client.responses.create({
      model: "gpt-oss-20b",
      input: "Hi",
      include: ["message.output_text.logprobs"],
      top_logprobs: 0,
    });
    const message = r.output.find((i) => i.type === "message");
    const part = message?.type === "message" ? message.content[0] : undefined;
    expect(part?.type === "output_text" ? bytesOf(part.logprobs ?? []) : null).toBe("Résumé done.");
    const s = await client.responses.create({ model: "gpt-oss-20b", input: "Hi", include: ["message.output_text.logprobs"], stream: true });
    const streamed = [];
    for await (const e of s) if (e.type === "response.output_text.delta") streamed.push(...e.logprobs);
    expect(bytesOf(streamed)).toBe("Résumé done.");
  });

  it("are null when not asked", async () => {
    const { client } = await gateway([answer("x", "y")]);
    const r = await client.chat.completions.create({ model: "gpt-oss-20b", messages: [{ role: "user", content: "Hi" }] });
    expect(r.choices[0]?.logprobs).toBeNull();
  });
});

describe("response_format (spec §6.11: rendered into the developer message)", () => {
  const schema = { type: "object", properties: { city: { type: "string" } }, required: ["city"] };

  it("chat json_schema renders a Response Formats section", async () => {
    const { client, worker } = await gateway([answer("x", '{"city":"Oslo"}')]);
    await client.chat.completions.create({
      model: "gpt-oss-20b",
      messages: [
        { role: "system", content: "Be exact." },
        { role: "user", content: "Where?" },
      ],
      response_format: { type: "json_schema", json_schema: { name: "place", description: "A place.", schema } },
    });
    const prompt = tok.decode(worker.requests[0]?.promptTokenIds ?? []);
    expect(prompt).toContain(
      `<|start|>developer<|message|># Instructions\n\nBe exact.\n\n# Response Formats\n\n## place\n\n// A place.\n${JSON.stringify(schema)}<|end|>`,
    );
  });

  it("chat json_object creates the developer message when there are no instructions", async () => {
    const { client, worker } = await gateway([answer("x", "{}")]);
    await client.chat.completions.create({
      model: "gpt-oss-20b",
      messages: [{ role: "user", content: "Data?" }],
      response_format: { type: "json_object" },
    });
    const prompt = tok.decode(worker.requests[0]?.promptTokenIds ?? []);
    expect(prompt).toMatch(
      /<\|start\|>developer<\|message\|># Response Formats\n\n## json_object\n\n\/\/ .+\n\{"type":"object"\}<\|end\|>/,
    );
  });

  it("Responses text.format renders the same section and is echoed back", async () => {
    const { client, worker } = await gateway([answer("x", '{"city":"Oslo"}')]);
    const r = await client.responses.create({
      model: "gpt-oss-20b",
      input: "Where?",
      text: { format: { type: "json_schema", name: "place", schema } },
    });
    const prompt = tok.decode(worker.requests[0]?.promptTokenIds ?? []);
    expect(prompt).toContain(`# Response Formats\n\n## place\n\n${JSON.stringify(schema)}<|end|>`);
    expect(r.text?.format).toMatchObject({ type: "json_schema", name: "place" });
    expect(r.output_text).toBe('{"city":"Oslo"}');
  });

  it("rejects a json_schema without a name with the param named", async () => {
    const { client } = await gateway([]);
    const err = await client.chat.completions
      .create({
        model: "gpt-oss-20b",
        messages: [{ role: "user", content: "x" }],
        // @ts-expect-error: deliberately missing the required json_schema
        response_format: { type: "json_schema" },
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe("response_format.json_schema");
  });
});
