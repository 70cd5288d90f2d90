/**
 * Constrained decoding end to end (#24): a worker process serving the random-weight tiny model (full
 * o200k_harmony vocabulary; its free output is gibberish), the gateway in front of it, the official
 * openai SDK as the client, ajv as the judge.
 *
 * A random model closes a JSON string or ends a free message only by chance, about once in hundreds
 * of tokens, so the structured-output requests send a logit_bias on the few tokens that close values
 * and messages (`"`, `}`, `]`, `,`, `true`, <|end|>, and the channel name `final`; not digits,
 * which continue numbers): it makes outputs end within max_tokens; every
 * token still comes through the grammar's mask, and the mask is what makes them valid.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startTestGateway, type TestGateway } from "@expertmesh/gateway/testing";
import { encodeText, HarmonyToken as T } from "@expertmesh/grammar";
import { headerParts, splitMessages, TEST_SCHEMAS } from "@expertmesh/grammar/testing";
import { SHAPES } from "@expertmesh/kernels";
import { writeSyntheticCheckpoint } from "@expertmesh/kernels/checkpoint";
import type { GenerateResponse } from "@expertmesh/proto/worker";
import { spawnWorker, type WorkerProcess } from "@expertmesh/worker/testing";
import { generateRequest } from "@expertmesh/worker/testing/generation";
import { Metadata } from "@grpc/grpc-js";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import OpenAI from "openai";
import type { ChatCompletionCreateParamsNonStreaming, ChatCompletionTool } from "openai/resources/chat/completions";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const MODEL = "gpt-oss-tiny";
const SEEDS = 200;
const WIDTH = 16; // requests in flight: the worker batches them
let worker: WorkerProcess;
let gateway: TestGateway;
let client: OpenAI;
const ajv = new Ajv2020({ strict: false });
addFormats.default(ajv);

const first = (s: string) => encodeText(s)[0] as number;
const CLOSERS: Record<string, number> = Object.fromEntries(
  [...['"', '"}', "}", "]", '"]', ",", "true", "final"].map(first), T.end].map((id) => [String(id), 14]),
);

beforeAll(async () => {
  const dir = join(mkdtempSync(join(tmpdir(), "constrained-")), "tiny");
  writeSyntheticCheckpoint({ shape: SHAPES.tiny, out: dir, seed: 7 });
  worker = await spawnWorker({
    WORKER_MODEL_PATH: dir,
    WORKER_MODEL_NAME: MODEL,
    WORKER_MAX_NUM_SEQS: String(WIDTH),
    WORKER_KV_NUM_BLOCKS: "1024",
  });
  gateway = await startTestGateway({ address: worker.address, model: MODEL });
  client = new OpenAI({ apiKey: "unused", baseURL: `${gateway.base}/v1`, maxRetries: 0 });
});
afterAll(async () => {
  await gateway?.close();
  await worker?.stop();
});

/** JSON.parse, failing the test with the seed and the text. */
function parse(text: string | null | undefined, seed: number): unknown {
  try {
    return JSON.parse(text ?? "");
  } catch (e) {
    throw new Error(`seed ${seed}: not JSON (${(e as Error).message}): ${JSON.stringify(text)}`);
  }
}

/** Runs seeds 0..n-1, WIDTH at a time. */
async function seeds(n: number, run: (seed: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: WIDTH }, async () => {
      while (next < n) await run(next++);
    }),
  );
}

interface Answer {
  content: string | null;
  toolCalls: Array<{ name: string; arguments: string }>;
  finish: string | null;
}

/** One chat completion, streamed for odd seeds and not for even ones; the answer as the SDK gives it. */
async function chat(params: Omit<ChatCompletionCreateParamsNonStreaming, "model" | "messages">, seed: number): Promise<Answer> {
  const base = {
    model: MODEL,
    messages: [{ role: "user" as const, content: "Answer as asked." }],
    temperature: 1,
    seed,
    max_tokens: 400,
    ...params,
  };
  if (seed % 2 === 0) {
    const r = await client.chat.completions.create(base);
    const c = r.choices[0];
    const toolCalls = (c?.message.tool_calls ?? []).map((t) =>
      t.type === "function" ? { name: t.function.name, arguments: t.function.arguments } : { name: "", arguments: "" },
    );
    return { content: c?.message.content ?? null, toolCalls, finish: c?.finish_reason ?? null };
  }
  const stream = await client.chat.completions.create({ ...base, stream: true });
  let content: string | null = null;
  let finish: string | null = null;
  const calls: Array<{ name: string; arguments: string }> = [];
  for await (const chunk of stream) {
    const c = chunk.choices[0];
    if (!c) continue;
    if (c.delta.content) content = (content ?? "") + c.delta.content;
    for (const t of c.delta.tool_calls ?? []) {
      calls[t.index] ??= { name: "", arguments: "" };
      const call = calls[t.index] as { name: string; arguments: string };
      call.name += t.function?.name ?? "";
      call.arguments += t.function?.arguments ?? "";
    }
    finish = c.finish_reason ?? finish;
  }
  return { content, toolCalls: calls, finish };
}

describe("response_format json_schema: 100 % of final answers validate (ajv)", () => {
  it.each(Object.keys(TEST_SCHEMAS))(`%s, ${SEEDS} seeds`, async (name) => {
    const schema = TEST_SCHEMAS[name] as Record<string, unknown>;
    const validate = ajv.compile(schema);
    await seeds(SEEDS, async (seed) => {
      const a = await chat(
        { response_format: { type: "json_schema", json_schema: { name, schema, strict: true } }, logit_bias: CLOSERS },
        seed,
      );
      expect(a.finish, `seed ${seed}`).toBe("stop");
      expect(validate(parse(a.content, seed)), `seed ${seed}: ${a.content}`).toBe(true);
    });
  });

  it(`json_object, ${SEEDS} seeds: a JSON object`, async () => {
    await seeds(SEEDS, async (seed) => {
      const a = await chat({ response_format: { type: "json_object" }, logit_bias: CLOSERS }, seed);
      const value = parse(a.content, seed);
      expect(typeof value === "object" && value !== null && !Array.isArray(value), `seed ${seed}: ${a.content}`).toBe(true);
    });
  });
});

const TOOLS: ChatCompletionTool[] = [
  { type: "function", function: { name: "get_weather", strict: true, parameters: TEST_SCHEMAS.nested_objects as Record<string, unknown> } },
  { type: "function", function: { name: "book", strict: true, parameters: TEST_SCHEMAS.integer_bounds as Record<string, unknown> } },
  { type: "function", function: { name: "search", parameters: { type: "object", properties: { q: { type: "string" } } } } },
];

function expectValidCall(a: Answer, allowed: string[], seed: number): string {
  expect(a.finish, `seed ${seed}`).toBe("tool_calls");
  expect(a.toolCalls.length, `seed ${seed}`).toBe(1);
  const call = a.toolCalls[0] as { name: string; arguments: string };
  expect(allowed, `seed ${seed}`).toContain(call.name);
  const args = parse(call.arguments, seed);
  const tool = TOOLS.find((t) => t.type === "function" && t.function.name === call.name);
  const fn = tool?.type === "function" ? tool.function : undefined;
  if (fn?.strict) expect(ajv.validate(fn.parameters as object, args), `seed ${seed}: ${call.arguments}`).toBe(true);
  else expect(typeof args === "object" && args !== null && !Array.isArray(args), `seed ${seed}: ${call.arguments}`).toBe(true);
  return call.name;
}

describe("tool_choice", () => {
  it(`required, ${SEEDS} seeds: every response calls a declared function with valid arguments`, async () => {
    const called = new Set<string>();
    await seeds(SEEDS, async (seed) => {
      called.add(
        expectValidCall(
          await chat({ tools: TOOLS, tool_choice: "required", logit_bias: CLOSERS }, seed),
          ["get_weather", "book", "search"],
          seed,
        ),
      );
    });
    expect(called.size).toBeGreaterThan(1);
  });

  it.each(["book", "search"])(`named %s, ${SEEDS} seeds: every response calls it`, async (name) => {
    await seeds(SEEDS, async (seed) => {
      expectValidCall(
        await chat({ tools: TOOLS, tool_choice: { type: "function", function: { name } }, logit_bias: CLOSERS }, seed),
        [name],
        seed,
      );
    });
  });
});

describe("the Harmony guard, on by default", () => {
  it("2,000 generations at temperature 1: no malformed header (checked token by token at the worker)", async () => {
    // What the gateway sends for a chat request with one tool: the same spec, straight over gRPC.
    const spec = {
      version: 1,
      guard: true,
      tools: [{ name: "lookup", strict: false, parameters: { type: "object" } }],
      toolChoice: { kind: "auto" },
      finalFormat: { kind: "text" },
    };
    const prompt = [T.start, ...encodeText("user"), T.message, ...encodeText("Hello"), T.end, T.start, ...encodeText("assistant")];
    let n = 0;
    await seeds(2000, async (seed) => {
      const tokens = await new Promise<number[]>((resolve, reject) => {
        const out: number[] = [];
        const stream = worker.client.generate(
          generateRequest(
            {
              requestId: `guard-${seed}`,
              promptTokenIds: prompt,
              stopTokenIds: [T.return, T.call],
              maxTokens: 16,
              constraint: { version: 1, specJson: JSON.stringify(spec) },
            },
            { temperature: 1, seed },
          ),
          new Metadata(),
        );
        stream.on("data", (e: GenerateResponse) => out.push(...(e.tokens?.tokens.map((t) => t.tokenId) ?? [])));
        stream.on("end", () => resolve(out));
        stream.on("error", reject);
      });
      // Close an unfinished last message so its header is checked too.
      const closed = [T.return, T.call, T.end].includes(tokens.at(-1) as 200002) ? tokens : [...tokens, T.end];
      for (const m of splitMessages(closed)) expect(headerParts(m.header), `seed ${seed}: ${JSON.stringify(m.header)}`).not.toBeNull();
      n++;
    });
    expect(n).toBe(2000);
  });
});

describe("reasoning budget", () => {
  it.each([1, 16, 64])("max_reasoning_tokens %i: a non-empty final answer, reasoning within the budget", async (budget) => {
    // The model is made to reason: "analysis" is strongly preferred wherever the grammar allows it.
    const bias = { [String(first("analysis"))]: 30 };
    await seeds(32, async (seed) => {
      const r = await client.chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: "Think, then answer." }],
        temperature: 1,
        seed,
        max_tokens: budget + 48,
        logit_bias: bias,
        max_reasoning_tokens: budget,
      } as ChatCompletionCreateParamsNonStreaming);
      const c = r.choices[0];
      expect(c?.message.content?.length ?? 0, `seed ${seed}`).toBeGreaterThan(0);
      const reasoning = r.usage?.completion_tokens_details?.reasoning_tokens ?? 0;
      // The budget's tokens, plus the forced <|end|> the gateway counts with the reasoning.
      expect(reasoning, `seed ${seed}`).toBeLessThanOrEqual(budget + 1);
      expect((c as unknown as { reasoning_truncated?: boolean }).reasoning_truncated, `seed ${seed}`).toBe(true);
    });
  });
});
