/**
 * The bound on preparing a prompt (GATEWAY_RENDER_BUDGET_MS, #20 item 2): a prompt whose rendering and
 * tokenizing run past the budget ends with an OpenAI-shaped 400 prompt_too_complex naming the field, on
 * every generating route, instead of holding the event loop for seconds; ordinary prompts are untouched.
 */
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ScriptedWorker, startScriptedWorker } from "../testing/scripted-worker.ts";
import { startTestGateway, type TestGateway } from "../testing/test-gateway.ts";

const MODEL = "gpt-oss-20b";
const BUDGET_MS = 40;
// One pre-tokenizer piece of 4 MB: ~1.5 s of merges, far past the test's budget.
const HUGE = "a".repeat(4_000_000);

let worker: ScriptedWorker;
let gateway: TestGateway;
let client: OpenAI;

beforeAll(async () => {
  worker = await startScriptedWorker([]);
  gateway = await startTestGateway({ address: worker.address, model: MODEL, config: { render_budget_ms: BUDGET_MS } });
  client = new OpenAI({ apiKey: "unused", baseURL: `${gateway.base}/v1`, maxRetries: 0 });
});

afterAll(async () => {
  await gateway?.close();
  await worker?.kill();
});

async function refusal(call: () => Promise<unknown>): Promise<{ status?: number; code?: unknown; param?: unknown; ms: number }> {
  const t0 = performance.now();
  try {
    await call();
    return { ms: performance.now() - t0 };
  } catch (err) {
    const e = err as InstanceType<typeof OpenAI.APIError>;
    return { status: e.status, code: e.code, param: e.param, ms: performance.now() - t0 };
  }
}

describe("GATEWAY_RENDER_BUDGET_MS", () => {
  it.each([
    ["chat completions", "messages", () => client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: HUGE }] })],
    ["completions", "prompt", () => client.completions.create({ model: MODEL, prompt: HUGE })],
    ["responses", "input", () => client.responses.create({ model: MODEL, input: HUGE })],
  ] as const)("%s: a prompt past the budget is 400 prompt_too_complex, param %s, and no generation starts", async (_route, param, call) => {
    const r = await refusal(call);
    expect(r).toMatchObject({ status: 400, code: "prompt_too_complex", param });
    expect(worker.requests).toHaveLength(0);
  });

  it("an ordinary prompt is served under the same budget", async () => {
    const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "Hello there." }], max_tokens: 4 });
    expect(r.choices[0]?.finish_reason).toBeDefined();
  });
});
