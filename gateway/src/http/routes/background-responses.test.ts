/**
 * Responses `background: true` through the openai SDK (create, retrieve, cancel), on both queues: the
 * in-process one with the in-process store, and BullMQ with the Redis store on a real redis-server. A
 * response is created queued, polled to completion; cancelled mid-run it stays cancelled and its worker
 * generation is aborted; a run that fails ends `failed` with the error a foreground request gets; the
 * shapes OpenAI refuses are 400s. (A gateway killed mid-run: test/e2e/background-responses.test.ts.)
 */
import { createLogger } from "@expertmesh/common";
import { HarmonyTokenizer } from "@expertmesh/grammar/tokenizer";
import OpenAI from "openai";
import type { Response } from "openai/resources/responses/responses";
import { afterEach, describe, expect, it } from "vitest";
import { BullBackgroundQueue } from "../../adapters/bullmq-background-queue.ts";
import { RedisResponseStore } from "../../adapters/redis-response-store.ts";
import { type BackgroundQueue, InProcessBackgroundQueue } from "../../domain/responses/background.ts";
import { MemoryResponseStore, type ResponseStore } from "../../domain/responses/store.ts";
import { redisForFile } from "../../testing/redis-for-file.ts";
import { closeScriptedGateways, scriptedGateway } from "../../testing/scripted-gateway.ts";
import type { ScriptOptions } from "../../testing/scripted-worker.ts";

const tok = new HarmonyTokenizer();
const ANSWER = "<|channel|>analysis<|message|>Think.<|end|><|start|>assistant<|channel|>final<|message|>Done in the background.<|return|>";
const redis = redisForFile();
afterEach(closeScriptedGateways);

/** Polls until `ok` holds (every 50 ms, up to 60 s: a loaded machine is slow, never wrong). */
async function until<T>(f: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  const end = Date.now() + 60_000;
  for (;;) {
    const v = await f();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`condition not met in time; last: ${JSON.stringify(v).slice(0, 300)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

type Setup = () => { store: ResponseStore; background: BackgroundQueue };
const setups: Array<[string, Setup]> = [
  ["in-process", () => ({ store: new MemoryResponseStore(), background: new InProcessBackgroundQueue() })],
  [
    "BullMQ on Redis",
    () => {
      const prefix = `bg-test-${Date.now()}-${Math.random().toString(36).slice(2)}:`;
      return {
        store: new RedisResponseStore(redis.client, 60_000, `${prefix}response:`),
        background: new BullBackgroundQueue({
          redisUrl: redis.server.url,
          redis: redis.client,
          keyPrefix: prefix,
          concurrency: 4,
          lockDurationMs: 5_000,
          maxStalledCount: 1,
          log: createLogger("test", "silent"),
        }),
      };
    },
  ],
];

for (const [name, setup] of setups) {
  describe(`background responses (${name})`, () => {
    const gateway = (scripts: number[][], worker: ScriptOptions = {}) => scriptedGateway(tok, scripts, { worker, deps: setup() });

    it("is created queued and polled to completion, stored like a foreground response", async () => {
      const { client, worker } = await gateway([tok.encodeWithSpecials(ANSWER)], { tokenIntervalMs: 5 });
      const created = await client.responses.create({ model: "gpt-oss-20b", input: "Work on this.", background: true });
      expect(created.status).toBe("queued");
      expect(created.background).toBe(true);
      expect(created.output).toEqual([]);
      const seen = new Set<string>();
      const done = await until(
        () => client.responses.retrieve(created.id),
        (r: Response) => {
          seen.add(r.status ?? "");
          return r.status === "completed";
        },
      );
      expect([...seen].every((s) => ["queued", "in_progress", "completed"].includes(s))).toBe(true);
      expect(done).toMatchObject({
        id: created.id,
        created_at: created.created_at,
        background: true,
        output_text: "Done in the background.",
      });
      expect(done.output.map((i) => i.type)).toEqual(["reasoning", "message"]);
      expect(done.usage?.input_tokens).toBe(worker.requests[0]?.promptTokenIds.length);
      expect(done.usage?.output_tokens).toBe(tok.encodeWithSpecials(ANSWER).length);
      expect(tok.decode(worker.requests[0]?.promptTokenIds ?? [])).toContain("<|start|>user<|message|>Work on this.<|end|>");
      const items = await client.responses.inputItems.list(created.id);
      expect(items.data).toMatchObject([{ type: "message", role: "user", content: [{ type: "input_text", text: "Work on this." }] }]);
      expect(worker.requests).toHaveLength(1);
      // Cancelling an ended response answers it unchanged.
      expect((await client.responses.cancel(created.id)).status).toBe("completed");
    });

    it("is cancelled mid-run: the worker's generation is aborted and the response stays cancelled", async () => {
      const long = tok.encodeWithSpecials(`<|channel|>final<|message|>${"word ".repeat(2_000)}<|return|>`);
      const { client, worker } = await gateway([long], { tokenIntervalMs: 20 });
      const created = await client.responses.create({ model: "gpt-oss-20b", input: "Write a lot.", background: true });
      await until(
        () => client.responses.retrieve(created.id),
        (r: Response) => r.status === "in_progress",
      );
      await until(
        async () => worker.requests.length,
        (n) => n === 1,
      );
      const cancelled = await client.responses.cancel(created.id);
      expect(cancelled).toMatchObject({ id: created.id, status: "cancelled" });
      const requestId = worker.requests[0]?.requestId;
      await until(
        async () => worker.cancelled,
        (c) => c.includes(requestId ?? "?"),
      );
      expect((await client.responses.retrieve(created.id)).status).toBe("cancelled");
      expect((await client.responses.cancel(created.id)).status).toBe("cancelled");
      // It has no conversation to continue.
      const followUp = client.responses.create({ model: "gpt-oss-20b", input: "And?", previous_response_id: created.id });
      await expect(followUp).rejects.toMatchObject({ status: 400, param: "previous_response_id" });
    });

    it("ends failed with the error a foreground request gets", async () => {
      const { client } = await gateway([], { fallback: tok.encodeWithSpecials(ANSWER), fail: { afterTokens: 3 } });
      const foreground = await client.responses.create({ model: "gpt-oss-20b", input: "x" }).catch((e: unknown) => e);
      expect(foreground).toBeInstanceOf(OpenAI.APIError);
      const created = await client.responses.create({ model: "gpt-oss-20b", input: "x", background: true });
      const failed = await until(
        () => client.responses.retrieve(created.id),
        (r: Response) => r.status === "failed",
      );
      const e = foreground as InstanceType<typeof OpenAI.APIError>;
      expect(e.code).toEqual(expect.any(String));
      expect(failed.error).toEqual({ code: e.code, message: e.message.replace(/^\d+ /, "") });
    });

    it("belongs to the tenant that created it: another key's retrieve and cancel are 404s", async () => {
      const [a, b] = ["sk-background-tenant-a-0123", "sk-background-tenant-b-0123"];
      const long = tok.encodeWithSpecials(`<|channel|>final<|message|>${"word ".repeat(2_000)}<|return|>`);
      const { client, base } = await scriptedGateway(tok, [long], {
        worker: { tokenIntervalMs: 20 },
        deps: setup(),
        config: { api_keys: [a, b] },
        apiKey: a,
      });
      const other = new OpenAI({ apiKey: b, baseURL: `${base}/v1`, maxRetries: 0 });
      const created = await client.responses.create({ model: "gpt-oss-20b", input: "Mine.", background: true });
      await expect(other.responses.retrieve(created.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
      await expect(other.responses.cancel(created.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
      expect((await client.responses.cancel(created.id)).status).toBe("cancelled");
    });

    it("refuses what OpenAI refuses: streaming, store: false, cancelling a foreground or unknown response", async () => {
      const { client } = await gateway([], { fallback: tok.encodeWithSpecials(ANSWER) });
      const refusal = (p: Promise<unknown>) =>
        p.then(
          () => null,
          (e: unknown) => e,
        );
      expect(await refusal(client.responses.create({ model: "gpt-oss-20b", input: "x", background: true, stream: true }))).toMatchObject({
        status: 400,
        param: "stream",
      });
      expect(await refusal(client.responses.create({ model: "gpt-oss-20b", input: "x", background: true, store: false }))).toMatchObject({
        status: 400,
        param: "store",
      });
      const foreground = await client.responses.create({ model: "gpt-oss-20b", input: "x" });
      expect(foreground.background).toBe(false);
      expect(await refusal(client.responses.cancel(foreground.id))).toBeInstanceOf(OpenAI.BadRequestError);
      expect(await refusal(client.responses.cancel("resp_nope"))).toBeInstanceOf(OpenAI.NotFoundError);
    });
  });
}
