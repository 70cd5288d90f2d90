/**
 * Chat completions through the real stack piece by piece: the official openai SDK → this gateway →
 * gRPC → a real worker process running a tiny synthetic gpt-oss (random weights: the text is noise, the
 * protocol is not). Non-streaming, streaming with the usage chunk and [DONE], and typed SDK errors.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SHAPES } from "@expertmesh/kernels";
import { writeSyntheticCheckpoint } from "@expertmesh/kernels/checkpoint";
import { spawnWorker, type WorkerProcess } from "@expertmesh/worker/testing";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "../../testing/test-gateway.ts";

const KEY = "sk-chat-test-0123456789";
let worker: WorkerProcess;
let gateway: TestGateway;
let client: OpenAI;

beforeAll(async () => {
  const dir = join(mkdtempSync(join(tmpdir(), "chat-model-")), "tiny");
  writeSyntheticCheckpoint({ shape: SHAPES.tiny, out: dir, seed: 4 });
  worker = await spawnWorker({ WORKER_MODEL_PATH: dir, WORKER_MODEL_NAME: "gpt-oss-tiny" });
  gateway = await startTestGateway({ address: worker.address, model: "gpt-oss-tiny", config: { api_keys: [KEY] } });
  client = new OpenAI({ apiKey: KEY, baseURL: `${gateway.base}/v1`, maxRetries: 0 });
}, 60_000);

afterAll(async () => {
  await gateway?.close();
  await worker?.stop();
});

describe("POST /v1/chat/completions", () => {
  it("answers non-streaming with an OpenAI-shaped completion and usage", async () => {
    const r = await client.chat.completions.create({
      model: "gpt-oss-tiny",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Say hello." },
      ],
      max_completion_tokens: 12,
      temperature: 0,
    });
    expect(r.object).toBe("chat.completion");
    expect(r.id).toMatch(/^chatcmpl-/);
    expect(r.choices).toHaveLength(1);
    expect(r.choices[0]?.message.role).toBe("assistant");
    expect(["stop", "length", "tool_calls"]).toContain(r.choices[0]?.finish_reason);
    expect(r.usage?.completion_tokens).toBeGreaterThan(0);
    expect(r.usage?.completion_tokens).toBeLessThanOrEqual(12);
    expect(r.usage?.total_tokens).toBe((r.usage?.prompt_tokens ?? 0) + (r.usage?.completion_tokens ?? 0));
  });

  it("reports the prompt tokens the worker served from its prefix cache", async () => {
    const ask = () =>
      client.chat.completions.create({
        model: "gpt-oss-tiny",
        messages: [
          { role: "system", content: `Cached usage check. ${"Repeat the words of this sentence. ".repeat(30)}` },
          { role: "user", content: "Once more." },
        ],
        max_completion_tokens: 2,
        temperature: 0,
      });
    const first = await ask();
    const again = await ask();
    // The first may reuse the system preamble every earlier request on this worker began with.
    expect(first.usage?.prompt_tokens_details?.cached_tokens).toBeLessThan(again.usage?.prompt_tokens_details?.cached_tokens ?? 0);
    const prompt = again.usage?.prompt_tokens ?? 0;
    // Every complete 16-token block but the one holding the last prompt token (its logits are needed).
    expect(again.usage?.prompt_tokens_details?.cached_tokens).toBe(Math.floor((prompt - 1) / 16) * 16);
  });

  it("streams chunks, a finish chunk, the usage chunk and [DONE]", async () => {
    const stream = await client.chat.completions.create({
      model: "gpt-oss-tiny",
      messages: [{ role: "user", content: "Count to three." }],
      max_tokens: 10,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks[0]?.choices[0]?.delta.role).toBe("assistant");
    const finishes = chunks.filter((c) => c.choices[0]?.finish_reason);
    expect(finishes).toHaveLength(1);
    const last = chunks.at(-1);
    expect(last?.choices).toEqual([]);
    expect(last?.usage?.completion_tokens).toBeGreaterThan(0);
  });

  it("streams a model's non-Harmony output token by token, not in one delta at the end", async () => {
    const stream = await client.chat.completions.create({
      model: "gpt-oss-tiny",
      messages: [{ role: "user", content: "Tell me a story." }],
      max_tokens: 48,
      seed: 11,
      stream: true,
      stream_options: { include_usage: true },
    });
    let contentChunks = 0;
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const c of stream) {
      if (c.choices[0]?.delta.content) contentChunks++;
      usage = c.usage ?? usage;
    }
    // The random model's first tokens are no Harmony header: they are recovered as text at once, so
    // answer text arrives as (nearly) one chunk per token.
    expect(usage?.completion_tokens).toBeGreaterThan(8);
    expect(contentChunks).toBeGreaterThan((usage?.completion_tokens ?? 0) / 2);
  });

  it("chat logprobs cover every answer token, streamed or not: their bytes are the answer", async () => {
    const ask = { model: "gpt-oss-tiny", messages: [{ role: "user" as const, content: "Hi" }], max_tokens: 16, seed: 5, logprobs: true };
    const r = await client.chat.completions.create({ ...ask, top_logprobs: 2 });
    const content = r.choices[0]?.message.content ?? "";
    const lps = r.choices[0]?.logprobs?.content ?? [];
    expect(content.length).toBeGreaterThan(0);
    expect(Buffer.from(lps.flatMap((l) => l.bytes ?? [])).toString("utf8")).toBe(content);
    const stream = await client.chat.completions.create({ ...ask, stream: true });
    const streamed: number[] = [];
    let text = "";
    for await (const c of stream) {
      text += c.choices[0]?.delta.content ?? "";
      for (const l of c.choices[0]?.logprobs?.content ?? []) streamed.push(...(l.bytes ?? []));
    }
    expect(text).toBe(content);
    expect(Buffer.from(streamed).toString("utf8")).toBe(content);
  });

  it("a prompt of ~300k tokens is 400 context_length_exceeded, not a 500 (no stack overflow on the way)", async () => {
    const words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"];
    const content = Array.from({ length: 300_000 }, (_, i) => words[(i * 5) % words.length]).join(" ");
    const err = await client.chat.completions
      .create({ model: "gpt-oss-tiny", messages: [{ role: "user", content }], max_tokens: 4 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).code).toBe("context_length_exceeded");
  });

  it("is deterministic at temperature 0 (same request → same output)", async () => {
    const ask = () =>
      client.chat.completions.create({ model: "gpt-oss-tiny", messages: [{ role: "user", content: "Hi" }], max_tokens: 8, temperature: 0 });
    const [a, b] = [await ask(), await ask()];
    expect(b.choices[0]?.message).toEqual(a.choices[0]?.message);
  });

  it("maps errors to the SDK's typed errors: 400 with param, 404 unknown model, 401", async () => {
    const bad = await client.chat.completions
      .create({ model: "gpt-oss-tiny", messages: [{ role: "user", content: "x" }], temperature: 5 })
      .catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(OpenAI.BadRequestError);
    expect((bad as InstanceType<typeof OpenAI.BadRequestError>).param).toBe("temperature");
    const missing = await client.chat.completions
      .create({ model: "nope", messages: [{ role: "user", content: "x" }] })
      .catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
    // tool_choice "required" is served since constrained decoding (constrained-decoding.test.ts); without tools it cannot be.
    const required = await client.chat.completions
      .create({ model: "gpt-oss-tiny", messages: [{ role: "user", content: "x" }], tool_choice: "required" })
      .catch((e: unknown) => e);
    expect(required).toBeInstanceOf(OpenAI.BadRequestError);
    expect((required as InstanceType<typeof OpenAI.BadRequestError>).param).toBe("tool_choice");
    const noKey = new OpenAI({ apiKey: "sk-wrong-0000000000", baseURL: client.baseURL, maxRetries: 0 });
    await expect(
      noKey.chat.completions.create({ model: "gpt-oss-tiny", messages: [{ role: "user", content: "x" }] }),
    ).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
  });
});

describe("n, seeds and logprobs against the real worker", () => {
  it("n = 3 returns three indexed choices, reproducible under one seed, usage summed", async () => {
    const ask = () =>
      client.chat.completions.create({
        model: "gpt-oss-tiny",
        messages: [{ role: "user", content: "Tell me something." }],
        n: 3,
        seed: 11,
        temperature: 1,
        max_tokens: 10,
      });
    const a = await ask();
    expect(a.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    expect(a.usage?.completion_tokens).toBeGreaterThanOrEqual(3);
    expect(a.usage?.completion_tokens).toBeLessThanOrEqual(30);
    const b = await ask();
    expect(b.choices.map((c) => c.message)).toEqual(a.choices.map((c) => c.message));
    expect(b.usage).toEqual(a.usage);
  });

  it("greedy logprobs: each sampled token is its own top alternative, logprobs ≤ 0", async () => {
    const r = await client.completions.create({ model: "gpt-oss-tiny", prompt: "Hello", max_tokens: 12, temperature: 0, logprobs: 3 });
    const lp = r.choices[0]?.logprobs;
    expect(lp?.tokens?.length).toBe(r.usage?.completion_tokens);
    for (const [i, token] of (lp?.tokens ?? []).entries()) {
      const top = Object.entries(lp?.top_logprobs?.[i] ?? {}).sort((x, y) => y[1] - x[1]);
      const logprob = lp?.token_logprobs?.[i] ?? 1;
      expect(logprob).toBeLessThanOrEqual(0);
      expect(top[0]?.[0]).toBe(token);
      expect(top[0]?.[1]).toBeCloseTo(logprob, 4);
    }
  });

  it("completions: n = 2 with legacy logprobs (one entry per generated token, offsets ascending)", async () => {
    const r = await client.completions.create({ model: "gpt-oss-tiny", prompt: "Once upon", max_tokens: 6, n: 2, seed: 3, logprobs: 2 });
    expect(r.choices.map((c) => c.index)).toEqual([0, 1]);
    let tokens = 0;
    for (const c of r.choices) {
      const lp = c.logprobs;
      expect(lp?.tokens?.length).toBeGreaterThan(0);
      expect(lp?.token_logprobs).toHaveLength(lp?.tokens?.length ?? -1);
      expect(lp?.top_logprobs).toHaveLength(lp?.tokens?.length ?? -1);
      for (const top of lp?.top_logprobs ?? []) expect(Object.keys(top).length).toBeLessThanOrEqual(2);
      const offsets = lp?.text_offset ?? [];
      expect([...offsets].sort((x, y) => x - y)).toEqual(offsets);
      tokens += lp?.tokens?.length ?? 0;
    }
    expect(r.usage?.completion_tokens).toBe(tokens);
  });

  it("rejects top_logprobs without logprobs and n above the cap with the param named", async () => {
    const noLp = await client.chat.completions
      .create({ model: "gpt-oss-tiny", messages: [{ role: "user", content: "x" }], top_logprobs: 2 })
      .catch((e: unknown) => e);
    expect(noLp).toBeInstanceOf(OpenAI.BadRequestError);
    expect((noLp as InstanceType<typeof OpenAI.BadRequestError>).param).toBe("top_logprobs");
    const tooMany = await client.chat.completions
      .create({ model: "gpt-oss-tiny", messages: [{ role: "user", content: "x" }], n: 9 })
      .catch((e: unknown) => e);
    expect(tooMany).toBeInstanceOf(OpenAI.BadRequestError);
    expect((tooMany as InstanceType<typeof OpenAI.BadRequestError>).param).toBe("n");
  });
});

describe("POST /v1/responses against the real worker", () => {
  it("create, retrieve, stream and previous_response_id", async () => {
    const r1 = await client.responses.create({ model: "gpt-oss-tiny", input: "Say hello.", max_output_tokens: 12, temperature: 0 });
    expect(r1.object).toBe("response");
    expect(["completed", "incomplete"]).toContain(r1.status);
    expect(r1.usage?.output_tokens).toBeGreaterThan(0);
    expect(r1.usage?.output_tokens).toBeLessThanOrEqual(12);
    expect((await client.responses.retrieve(r1.id)).usage).toEqual(r1.usage);

    const events: string[] = [];
    const s = await client.responses.create({
      model: "gpt-oss-tiny",
      input: "And again.",
      previous_response_id: r1.id,
      max_output_tokens: 8,
      temperature: 0,
      stream: true,
    });
    let final: OpenAI.Responses.Response | undefined;
    for await (const e of s) {
      events.push(e.type);
      if (e.type === "response.completed" || e.type === "response.incomplete") final = e.response;
    }
    expect(events[0]).toBe("response.created");
    expect(final?.previous_response_id).toBe(r1.id);
    // The follow-up's prompt holds the first turn: it is longer than the first prompt plus the new input.
    expect(final?.usage?.input_tokens).toBeGreaterThan(r1.usage?.input_tokens ?? 0);
    expect((await client.responses.retrieve(final?.id ?? "")).id).toBe(final?.id);
  });
});
