/**
 * POST /tokenize and /detokenize (vLLM's shapes) through the openai SDK's generic calls: every Harmony
 * conformance case of test/fixtures/harmony round-trips exactly (text → ids → text), chat messages give
 * the very ids /v1/chat/completions sends to the worker, and both routes sit behind the API's auth with
 * OpenAI-shaped errors. `return_token_strs` names every token as vLLM does for gpt-oss (specials by name,
 * ordinary tokens in the byte-level alphabet, exact bytes kept where a token splits a character). GET
 * /version too.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { byteLevelBytes, HarmonyTokenizer, Special } from "@expertmesh/grammar/tokenizer";
import { fixturesDir } from "@expertmesh/kernels/testing";
import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import { closeScriptedGateways, scriptedGateway } from "../../testing/scripted-gateway.ts";

interface RenderCase {
  name: string;
  expected_text: string;
  expected_tokens: number[];
}
interface Tokenized {
  count: number;
  max_model_len: number;
  tokens: number[];
  token_strs?: string[];
}

const cases: RenderCase[] = JSON.parse(readFileSync(join(fixturesDir(), "harmony", "render-cases.json"), "utf8"));
const tok = new HarmonyTokenizer();
const KEY = "sk-tokenize-test-0123456789";
afterEach(closeScriptedGateways);

/** A gateway with auth on; `root` calls /tokenize and /detokenize, `v1` the OpenAI API. */
async function gateway(scripts: number[][] = [], config: Record<string, unknown> = {}) {
  const { client: v1, worker, base } = await scriptedGateway(tok, scripts, { config: { api_keys: [KEY], ...config }, apiKey: KEY });
  const client = (apiKey: string) => new OpenAI({ apiKey, baseURL: base, maxRetries: 0 });
  return { root: client(KEY), v1, client, worker };
}

describe("/tokenize and /detokenize", () => {
  it("round-trip every Harmony conformance case exactly", async () => {
    const { root } = await gateway([], { max_prompt_tokens: 100_000 });
    expect(cases).toHaveLength(19);
    for (const c of cases) {
      const t = await root.post<Tokenized>("/tokenize", { body: { model: "gpt-oss-20b", prompt: c.expected_text } });
      expect(t, c.name).toEqual({ count: c.expected_tokens.length, max_model_len: 100_000, tokens: c.expected_tokens });
      const d = await root.post<{ prompt: string }>("/detokenize", { body: { model: "gpt-oss-20b", tokens: t.tokens } });
      expect(d.prompt, c.name).toBe(c.expected_text);
    }
  });

  it("renders chat messages as /v1/chat/completions does, with or without the generation prompt", async () => {
    const { root, v1, worker } = await gateway([tok.encodeWithSpecials("<|channel|>final<|message|>Hi.<|return|>")]);
    const body = {
      model: "gpt-oss-20b",
      messages: [
        { role: "system" as const, content: "Be brief." },
        { role: "user" as const, content: "Weather in Paris?" },
        {
          role: "assistant" as const,
          content: null,
          tool_calls: [{ id: "call_1", type: "function" as const, function: { name: "get_weather", arguments: '{"city":"Paris"}' } }],
        },
        { role: "tool" as const, tool_call_id: "call_1", content: '{"sky":"clear"}' },
      ],
      tools: [{ type: "function" as const, function: { name: "get_weather", parameters: { type: "object" } } }],
      reasoning_effort: "high" as const,
    };
    // Tokenized before and after: a chat request crossing midnight UTC renders one of the two dates.
    const before = await root.post<Tokenized>("/tokenize", { body });
    await v1.chat.completions.create(body);
    const after = await root.post<Tokenized>("/tokenize", { body });
    const sent = worker.requests[0]?.promptTokenIds;
    expect([before.tokens, after.tokens]).toContainEqual(sent);
    expect(after.count).toBe(after.tokens.length);
    const text = (await root.post<{ prompt: string }>("/detokenize", { body: { tokens: after.tokens } })).prompt;
    expect(text).toContain("Reasoning: high");
    expect(text).toContain('<|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>{"sky":"clear"}<|end|>');
    expect(text.endsWith("<|start|>assistant")).toBe(true);
    expect(tok.encodeWithSpecials(text)).toEqual(after.tokens);

    const bare = await root.post<Tokenized>("/tokenize", { body: { ...body, add_generation_prompt: false } });
    // The same conversation without the closing `<|start|>assistant` (two tokens; a date has a fixed token count).
    expect(after.tokens.slice(-2)).toEqual([Special.start, ...tok.encode("assistant")]);
    expect(bare.tokens).toHaveLength(after.tokens.length - 2);
    expect(bare.tokens.at(-1)).toBe(Special.end);
  });

  it("answer OpenAI-shaped errors: no key, neither or both inputs, an id outside the vocabulary, a prompt over the limit", async () => {
    const { root, client } = await gateway([], { max_prompt_tokens: 8 });
    for (const path of ["/tokenize", "/detokenize"])
      await expect(client("sk-wrong-key-0123456789").post(path, { body: { prompt: "x", tokens: [1] } })).rejects.toBeInstanceOf(
        OpenAI.AuthenticationError,
      );
    const refusal = (path: string, body: object) =>
      root.post(path, { body }).then(
        () => null,
        (e: unknown) => e,
      );
    const both = await refusal("/tokenize", { prompt: "x", messages: [{ role: "user", content: "x" }] });
    expect(both).toBeInstanceOf(OpenAI.BadRequestError);
    expect(both).toMatchObject({ type: "invalid_request_error", param: "messages" });
    expect(await refusal("/tokenize", { model: "gpt-oss-20b" })).toMatchObject({ status: 400, param: "prompt" });
    expect(await refusal("/detokenize", { tokens: [1, 201_088] })).toMatchObject({
      status: 400,
      param: "tokens[1]",
      error: { message: "tokens[1] is 201088: token ids are 0 to 201087" },
    });
    const long = await refusal("/tokenize", { prompt: "one two three four five six seven eight nine" });
    expect(long).toMatchObject({ status: 400, code: "context_length_exceeded", param: "prompt" });
  });
});

describe("/tokenize with return_token_strs", () => {
  /** The text a run of token strings stands for: their bytes (specials' names are printable ASCII, themselves), as UTF-8. */
  const textOf = (strs: string[]) => {
    const bytes = byteLevelBytes(strs.join(""));
    expect(bytes).not.toBeNull();
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes as Uint8Array);
  };

  it("names each token as vLLM does: specials by name, the bytes of a character split across tokens kept exactly", async () => {
    const { root } = await gateway();
    const prompt = "<|start|>user<|message|>Hi 🦜\n<|end|><|start|>assistant<|channel|>final<|message|>";
    const plain = await root.post<Tokenized>("/tokenize", { body: { prompt } });
    const t = await root.post<Tokenized>("/tokenize", { body: { prompt, return_token_strs: true } });
    expect(t.tokens).toEqual(plain.tokens);
    expect(t.count).toBe(t.tokens.length);
    const strs = t.token_strs as string[];
    expect(strs).toHaveLength(t.tokens.length);
    // The parrot (4 UTF-8 bytes) is split: some of its tokens are not UTF-8 on their own.
    expect(t.tokens.filter((id) => tok.wholeText(id) === null).length).toBeGreaterThanOrEqual(2);
    for (const [i, id] of t.tokens.entries()) {
      const s = strs[i] as string;
      if (tok.isSpecial(id)) {
        expect(s).toMatch(/^<\|[a-z_0-9]+\|>$/);
        expect(tok.encodeWithSpecials(s)).toEqual([id]);
      } else expect(byteLevelBytes(s), `token ${i} (${id})`).toEqual(tok.bytes(id));
    }
    expect(t.tokens.map((id, i) => (id === Special.start || id === Special.channel ? strs[i] : null)).filter(Boolean)).toEqual([
      "<|start|>",
      "<|start|>",
      "<|channel|>",
    ]);
    // Hugging Face's byte-level names: a newline is Ċ, a leading space Ġ.
    expect(strs).toContain("Ċ");
    expect(strs.some((s) => s.startsWith("Ġ"))).toBe(true);
    // Together they are the prompt, byte for byte; the split character's tokens together are the character.
    expect(textOf(strs)).toBe(prompt);
    const split = t.tokens.flatMap((id, i) => (tok.wholeText(id) === null ? [strs[i] as string] : []));
    expect(textOf(split).trim()).toBe("🦜");
  });

  it("names the tokens of every Harmony conformance case so that together they spell its text exactly", async () => {
    const { root } = await gateway([], { max_prompt_tokens: 100_000 });
    for (const c of cases) {
      const t = await root.post<Tokenized>("/tokenize", { body: { prompt: c.expected_text, return_token_strs: true } });
      expect(t.tokens, c.name).toEqual(c.expected_tokens);
      expect(t.token_strs, c.name).toHaveLength(c.expected_tokens.length);
      expect(textOf(t.token_strs as string[]), c.name).toBe(c.expected_text);
    }
  });

  it("names the tokens of chat messages, and answers none unless asked", async () => {
    const { root } = await gateway();
    const messages = [{ role: "user", content: "Grüße aus 東京 🦜" }];
    const t = await root.post<Tokenized>("/tokenize", { body: { messages, return_token_strs: true } });
    const text = (await root.post<{ prompt: string }>("/detokenize", { body: { tokens: t.tokens } })).prompt;
    expect(textOf(t.token_strs as string[])).toBe(text);
    expect(text).toContain("Grüße aus 東京 🦜");
    for (const flag of [false, null, undefined]) {
      const r = await root.post<Tokenized>("/tokenize", { body: { messages, return_token_strs: flag } });
      expect(r.tokens).toEqual(t.tokens);
      expect(r).not.toHaveProperty("token_strs");
    }
  });

  it("refuses a return_token_strs that is not a boolean, OpenAI-shaped", async () => {
    const { root } = await gateway();
    for (const bad of ["yes", 2, { on: true }]) {
      const e = await root.post("/tokenize", { body: { prompt: "x", return_token_strs: bad } }).then(
        () => null,
        (err: unknown) => err,
      );
      expect(e, JSON.stringify(bad)).toBeInstanceOf(OpenAI.BadRequestError);
      expect(e).toMatchObject({ status: 400, type: "invalid_request_error", param: "return_token_strs" });
    }
  });
});

describe("GET /version", () => {
  it("names the package version, the build's commit and the models served, behind auth", async () => {
    const { root, client } = await gateway([], { build_commit: "0123abc" });
    const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string };
    expect(await root.get("/version")).toEqual({ version: pkg.version, commit: "0123abc", models: ["gpt-oss-20b"] });
    await expect(client("sk-wrong-key-0123456789").get("/version")).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
  });
});
