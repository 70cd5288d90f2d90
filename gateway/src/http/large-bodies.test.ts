/**
 * Large JSON bodies (R23): from 256 KiB up they are parsed on the JSON thread (adapters/json-threads.ts)
 * with the rules and errors of the event loop's own parser — empty, malformed and `__proto__`-poisoned
 * bodies are the same OpenAI-shaped 400s either way — and tool definitions over 512 KiB are refused
 * without serializing them (one long description, or many short ones).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ThreadJsonParser } from "../adapters/json-threads.ts";
import { type ScriptedWorker, startScriptedWorker } from "../testing/scripted-worker.ts";
import { startTestGateway, type TestGateway } from "../testing/test-gateway.ts";
import type { JsonBodyParser } from "./json-body.ts";

const MODEL = "gpt-oss-20b";
const PAD = "x".repeat(300 * 1024); // past the 256 KiB from which bodies go to the thread
const LIMIT = 6 * 1024 * 1024;

let worker: ScriptedWorker;
const thread = new ThreadJsonParser();
const threadParsed: number[] = [];
const counting: JsonBodyParser = {
  open: () => {
    threadParsed.push(1);
    return thread.open();
  },
};
const gateways: Record<string, TestGateway> = {};

beforeAll(async () => {
  worker = await startScriptedWorker([], { fallback: [1234, 1235] });
  gateways.inline = await startTestGateway({ address: worker.address, model: MODEL });
  gateways.thread = await startTestGateway({
    address: worker.address,
    model: MODEL,
    config: { http: { body_limit_bytes: LIMIT } },
    deps: { bodyParser: counting },
  });
});

afterAll(async () => {
  await Promise.all(Object.values(gateways).map((g) => g.close()));
  await thread.close();
  await worker?.kill();
});

async function post(gateway: string, path: string, body: string, chunked = false): Promise<{ status: number; body: unknown }> {
  // Chunked: no content-length, so the body goes to the thread only once it has grown past the mark.
  const stream = new ReadableStream({
    start(c) {
      for (let i = 0; i < body.length; i += 64 * 1024) c.enqueue(new TextEncoder().encode(body.slice(i, i + 64 * 1024)));
      c.close();
    },
  });
  const r = await fetch(`${gateways[gateway]?.base}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: chunked ? stream : body,
    ...(chunked ? { duplex: "half" } : {}),
  });
  return { status: r.status, body: await r.json() };
}

const chat = (content: string, extra = "") =>
  `{"model":"${MODEL}","max_tokens":2,"messages":[{"role":"user","content":"${content}"}]${extra}}`;

describe("large JSON bodies", () => {
  it("a large body is parsed on the thread and served exactly as when parsed inline", async () => {
    const before = threadParsed.length;
    const [inline, threaded] = [
      await post("inline", "/v1/chat/completions", chat(PAD)),
      await post("thread", "/v1/chat/completions", chat(PAD)),
    ];
    expect(threadParsed.length).toBe(before + 1);
    expect(threaded.status).toBe(200);
    expect(inline.status).toBe(200);
    const prompts = worker.requests.slice(-2).map((r) => r.promptTokenIds);
    expect(prompts[1]).toEqual(prompts[0]);
    // A small body stays on the event loop.
    await post("thread", "/v1/chat/completions", chat("hi"));
    expect(threadParsed.length).toBe(before + 1);
  });

  it("a chunked body with no content-length moves to the thread once past the mark", async () => {
    expect((await post("inline", "/v1/chat/completions", chat(PAD))).status).toBe(200);
    const before = threadParsed.length;
    expect((await post("thread", "/v1/chat/completions", chat(PAD), true)).status).toBe(200);
    expect(threadParsed.length).toBe(before + 1);
    const prompts = worker.requests.slice(-2).map((r) => r.promptTokenIds);
    expect(prompts[1]).toEqual(prompts[0]);
  });

  it.each([false, true])("over the body limit on the thread's path (chunked: %s): 413 request_too_large", async (chunked) => {
    const r = await post("thread", "/v1/chat/completions", chat("y".repeat(LIMIT)), chunked);
    expect(r).toMatchObject({ status: 413, body: { error: { code: "request_too_large" } } });
    expect((await post("thread", "/v1/chat/completions", chat(PAD))).status).toBe(200);
  });

  it.each([
    ["malformed", `${chat(PAD).slice(0, -1)}`],
    ["poisoned with __proto__", chat(PAD, ',"__proto__":{"admin":true}')],
    ["poisoned with constructor.prototype", chat(PAD, ',"constructor":{"prototype":{"admin":true}}')],
  ])("a %s large body: the same 400 from the thread as inline", async (_what, body) => {
    const [inline, threaded] = [await post("inline", "/v1/chat/completions", body), await post("thread", "/v1/chat/completions", body)];
    expect(inline.status).toBe(400);
    expect(threaded).toEqual(inline);
    expect(threaded.body).toMatchObject({ error: { type: "invalid_request_error" } });
  });

  it.each([
    [
      "one 4.8 MB description (chat)",
      "/v1/chat/completions",
      [{ type: "function", function: { name: "big", description: "d".repeat(4_800_000) } }],
    ],
    [
      "100 descriptions of 6,000 characters (Responses)",
      "/v1/responses",
      Array.from({ length: 100 }, (_, i) => ({ type: "function", name: `f${i}`, description: "é".repeat(6_000) })),
    ],
  ])("tools over 512 KiB of JSON, %s: 400 naming tools", async (_what, path, tools) => {
    const body = JSON.stringify({ model: MODEL, max_tokens: 2, messages: [{ role: "user", content: "hi" }], input: "hi", tools });
    const r = await post("thread", path, path === "/v1/responses" ? body.replace(/"messages":\[[^\]]*\],/, "") : body);
    expect(r).toMatchObject({ status: 400, body: { error: { type: "invalid_request_error", param: "tools" } } });
  });

  it("tools of just under 512 KiB are accepted", async () => {
    const tools = Array.from({ length: 100 }, (_, i) => ({ type: "function", name: `f${i}`, description: "lorem ".repeat(850) }));
    const r = await post("thread", "/v1/responses", JSON.stringify({ model: MODEL, input: "hi", max_output_tokens: 16, tools }));
    expect(r.status, JSON.stringify(r.body)).toBe(200);
  });
});
