/**
 * Prompts prepared on worker threads: the same tokens as on the event loop, the event loop free while a
 * megabyte-sized prompt is tokenized, the budget and a client's departure stop the job and leave the
 * thread serving, and a bounded queue.
 */
import { readdirSync, readFileSync } from "node:fs";
import { createMetricsRegistry } from "@expertmesh/common";
import { HarmonyTokenizer } from "@expertmesh/grammar/tokenizer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HarmonyMessage } from "../domain/harmony/types.ts";
import { InlinePromptPreparer } from "../domain/prompt-preparer.ts";
import { promptThreadMetrics, ThreadPromptPreparer } from "./prompt-threads.ts";

const registry = createMetricsRegistry("prompt-threads-test");
let threads: ThreadPromptPreparer;
const inline = new InlinePromptPreparer(new HarmonyTokenizer());
const msg = (role: HarmonyMessage["role"], content: string): HarmonyMessage => ({
  role,
  name: null,
  recipient: null,
  channel: null,
  content_type: null,
  content,
});
const OPTIONS = { for_completion: true, auto_drop_analysis: false };
const job = (budgetMs = 60_000, signal?: AbortSignal) => ({ budgetMs, param: "messages", ...(signal ? { signal } : {}) });

beforeAll(() => {
  threads = new ThreadPromptPreparer({ threads: 1, maxQueued: 2, retryAfterMs: 1000, metrics: promptThreadMetrics(registry) });
});
afterAll(async () => {
  await threads?.close();
});

async function jobs(): Promise<Record<string, number>> {
  const m = await registry.getSingleMetric("expertmesh_gateway_prompt_prepare_jobs")?.get();
  return Object.fromEntries((m?.values ?? []).map((v) => [String(v.labels.state), v.value]));
}

async function stopped(reason: string): Promise<number> {
  const m = await registry.getSingleMetric("expertmesh_gateway_prompt_prepare_stopped_total")?.get();
  return m?.values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

describe("ThreadPromptPreparer", () => {
  it("renders and encodes exactly as on the event loop", async () => {
    const conversation = [msg("system", "You are terse."), msg("user", "Héllo <|end|> wörld, 123456 🙂\n\n  indented")];
    expect(await threads.render(conversation, OPTIONS, job())).toEqual(await inline.render(conversation, OPTIONS, job()));
    const raw = "<|start|>user<|message|>hi<|end|><|start|>assistant";
    expect(await threads.encodeWithSpecials(raw, job())).toEqual(await inline.encodeWithSpecials(raw, job()));
  });

  it("strings of 256 Ki characters or more cross in slices and come out whole (surrogate pairs cut at a slice edge too)", async () => {
    const emoji = "🙂".repeat(300_000); // 600,000 UTF-16 units: pairs straddle the 262,144-unit edges
    const prose = "The quick brown fox jumps over the lazy dog. ".repeat(12_000);
    const conversation = [msg("system", prose), msg("user", `x${emoji}`), msg("user", "short")];
    expect(await threads.render(conversation, OPTIONS, job())).toEqual(await inline.render(conversation, OPTIONS, job()));
    expect(await threads.encodeWithSpecials(`<|start|>${prose}`, job())).toEqual(
      await inline.encodeWithSpecials(`<|start|>${prose}`, job()),
    );
  });

  it("a client leaving while its large strings are still being sent stops the job; the thread moves on", async () => {
    const controller = new AbortController();
    const work = threads.encodeWithSpecials("f".repeat(4_000_000), job(60_000, controller.signal));
    controller.abort(new Error("left early"));
    await expect(work).rejects.toThrow("left early");
    expect(await threads.encodeWithSpecials("next", job())).toEqual(await inline.encodeWithSpecials("next", job()));
  });

  it("leaves the event loop free while a 4 MB run of one character is tokenized", async () => {
    let worstLag = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      worstLag = Math.max(worstLag, now - last - 10);
      last = now;
    }, 10);
    const r = await threads.encodeWithSpecials("a".repeat(4_000_000), job());
    clearInterval(timer);
    expect(r.length).toBeGreaterThan(100_000);
    // Inline, this work holds the loop for over a second; a thread leaves only scheduling noise.
    expect(worstLag).toBeLessThan(500);
  });

  it("a job past its budget is 400 prompt_too_complex, and the thread serves the next job", async () => {
    const before = await stopped("budget");
    await expect(threads.render([msg("user", "b".repeat(4_000_000))], OPTIONS, job(30))).rejects.toMatchObject({
      code: "prompt_too_complex",
      param: "messages",
    });
    expect(await stopped("budget")).toBe(before + 1);
    expect((await threads.render([msg("user", "ok")], OPTIONS, job())).tokens.length).toBeGreaterThan(0);
  });

  it("a job whose client went away stops at once (well before its budget) and the thread moves on", async () => {
    const before = await stopped("cancelled");
    const controller = new AbortController();
    const t0 = performance.now();
    const work = threads.encodeWithSpecials("c".repeat(8_000_000), job(60_000, controller.signal));
    setTimeout(() => controller.abort(new Error("client gone")), 50);
    await expect(work).rejects.toThrow("client gone");
    expect(performance.now() - t0).toBeLessThan(3_000);
    expect(await stopped("cancelled")).toBe(before + 1);
    expect(await threads.encodeWithSpecials("next", job())).toEqual(await inline.encodeWithSpecials("next", job()));
  });

  // Two threads load a tokenizer each: seconds on a loaded 2-core machine.
  it.runIf(process.platform === "linux")(
    "its threads run at the configured nice value; the calling thread keeps its own",
    { timeout: 60_000 },
    async () => {
      const niceOfThreads = () =>
        readdirSync("/proc/self/task").map((tid) => {
          const fields = readFileSync(`/proc/self/task/${tid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
          return Number(fields[16]); // field 19 of stat(5), counted after the command name
        });
      const before = niceOfThreads().filter((n) => n === 13).length;
      const pool = new ThreadPromptPreparer({ threads: 2, maxQueued: 4, retryAfterMs: 1000, nice: 13 });
      await Promise.all([pool.encodeWithSpecials("one", job()), pool.encodeWithSpecials("two", job())]);
      expect(niceOfThreads().filter((n) => n === 13).length).toBe(before + 2);
      expect(niceOfThreads()[0]).toBe(0);
      await pool.close();
    },
  );

  it("a prompt over maxTokens is 400 context_length_exceeded with its count", async () => {
    await expect(threads.encodeWithSpecials("word ".repeat(500), { ...job(), maxTokens: 100, param: "prompt" })).rejects.toMatchObject({
      code: "context_length_exceeded",
      param: "prompt",
      message: expect.stringMatching(/the prompt has 50\d tokens; this gateway accepts at most 100/),
    });
  });

  it("beyond maxQueued waiting jobs: 429 overloaded with retry-after", async () => {
    const controller = new AbortController();
    const running = [0, 1, 2].map(() => threads.encodeWithSpecials("d".repeat(2_000_000), job(60_000, controller.signal)));
    await expect(threads.encodeWithSpecials("e", job())).rejects.toMatchObject({ code: "overloaded", retryAfterMs: 1000 });
    expect(await jobs()).toEqual({ running: 1, waiting: 2 });
    controller.abort(new Error("done"));
    await Promise.allSettled(running);
    expect(await jobs()).toEqual({ running: 0, waiting: 0 });
  });
});
