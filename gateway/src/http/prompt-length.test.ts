/**
 * GATEWAY_MAX_PROMPT_TOKENS (#20 items 2–3): a prompt longer than any served model's context is refused
 * by the gateway with 400 context_length_exceeded naming the field, on every generating route, whether
 * prompts are prepared on the event loop or on prompt threads (where the tokens never cross back) and for
 * pre-tokenized completions prompts; no worker sees it. A prompt within the limit is served.
 */
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ThreadPromptPreparer } from "../adapters/prompt-threads.ts";
import { type ScriptedWorker, startScriptedWorker } from "../testing/scripted-worker.ts";
import { startTestGateway, type TestGateway } from "../testing/test-gateway.ts";

const MODEL = "gpt-oss-20b";
const LIMIT = 1_000;
const LONG = "hello ".repeat(3 * LIMIT); // one token per word, and more

let worker: ScriptedWorker;
const threads = new ThreadPromptPreparer({ threads: 1, maxQueued: 8, retryAfterMs: 1000 });
const gateways: Record<string, TestGateway> = {};

beforeAll(async () => {
  worker = await startScriptedWorker([]);
  const config = { max_prompt_tokens: LIMIT };
  gateways.inline = await startTestGateway({ address: worker.address, model: MODEL, config });
  gateways.threads = await startTestGateway({ address: worker.address, model: MODEL, config, deps: { prompts: threads } });
});

afterAll(async () => {
  await Promise.all(Object.values(gateways).map((g) => g.close()));
  await threads.close();
  await worker?.kill();
});

const client = (preparer: string) => new OpenAI({ apiKey: "unused", baseURL: `${gateways[preparer]?.base}/v1`, maxRetries: 0 });

async function refusal(call: () => Promise<unknown>): Promise<{ status?: number; code?: unknown; param?: unknown; message?: string }> {
  try {
    await call();
    return {};
  } catch (err) {
    const e = err as InstanceType<typeof OpenAI.APIError>;
    return { status: e.status, code: e.code, param: e.param, message: e.message };
  }
}

describe.each(["inline", "threads"])("GATEWAY_MAX_PROMPT_TOKENS, prompts prepared %s", (preparer) => {
  it.each([
    [
      "chat completions",
      "messages",
      (c: OpenAI) => c.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: LONG }] }),
    ],
    ["completions", "prompt", (c: OpenAI) => c.completions.create({ model: MODEL, prompt: LONG })],
    ["completions, token ids", "prompt", (c: OpenAI) => c.completions.create({ model: MODEL, prompt: Array(LIMIT + 1).fill(1234) })],
    ["responses", "input", (c: OpenAI) => c.responses.create({ model: MODEL, input: LONG })],
  ] as const)("%s: over the limit is 400 context_length_exceeded, param %s, and no worker sees it", async (_route, param, call) => {
    const before = worker.requests.length;
    const r = await refusal(() => call(client(preparer)));
    expect(r).toMatchObject({ status: 400, code: "context_length_exceeded", param });
    expect(r.message).toContain(`at most ${LIMIT}`);
    expect(worker.requests.length).toBe(before);
  });

  it("a prompt within the limit is served", async () => {
    const before = worker.requests.length;
    const content = "hello ".repeat(LIMIT / 2);
    const r = await client(preparer).chat.completions.create({ model: MODEL, messages: [{ role: "user", content }], max_tokens: 4 });
    expect(r.choices[0]?.finish_reason).toBeDefined();
    expect(worker.requests.length).toBe(before + 1);
    expect(worker.requests.at(-1)?.promptTokenIds.length).toBeLessThanOrEqual(LIMIT);
  });
});
