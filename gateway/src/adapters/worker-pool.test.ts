/**
 * The worker pool's routing over real gRPC: health-aware choice (R13, grpc.health.v1 Watch), retry on
 * another worker before the first token, never after it (R12), and a worker killed under 20 streams
 * (R7 in spirit) with scripted workers and with real worker processes (SIGKILL).
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AppError, createLogger } from "@expertmesh/common";
import { SHAPES } from "@expertmesh/kernels";
import { writeSyntheticCheckpoint } from "@expertmesh/kernels/checkpoint";
import { ErrorKind, GenerateRequest } from "@expertmesh/proto/worker";
import { spawnWorker, type WorkerProcess } from "@expertmesh/worker/testing";
import { status } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { StaticWorkerDirectory } from "../domain/worker-directory.ts";
import { type ScriptedWorker, type ScriptOptions, startScriptedWorker } from "../testing/scripted-worker.ts";
import { readyMember } from "../testing/test-gateway.ts";
import { WorkerPool } from "./worker-pool.ts";

const MODEL = "gpt-oss-test";
const TOKENS = [11, 12, 13, 14, 15, 16, 17, 18, 19, 20];
const log = createLogger("worker-pool-test", "silent");

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function scripted(options: ScriptOptions = {}): Promise<ScriptedWorker> {
  const w = await startScriptedWorker([], { fallback: TOKENS, ...options });
  cleanup.push(() => w.kill());
  return w;
}

function poolOver(addresses: string[]): WorkerPool {
  const directory = new StaticWorkerDirectory(addresses.map((a, i) => readyMember(a, MODEL, `w${i}`)));
  const pool = new WorkerPool(directory, log, { healthBackoff: { initialMs: 50, maxMs: 500, recheckMs: 100 } });
  cleanup.push(() => pool.close());
  return pool;
}

interface Outcome {
  tokens: number[];
  finished: boolean;
  error?: AppError;
}

let seq = 0;
async function run(pool: WorkerPool, maxTokens = TOKENS.length, onToken?: () => void): Promise<Outcome> {
  const request = GenerateRequest.fromPartial({ requestId: `r${++seq}`, promptTokenIds: [1, 2, 3], maxTokens });
  const out: Outcome = { tokens: [], finished: false };
  try {
    for await (const e of pool.generate(MODEL, request, new AbortController().signal)) {
      for (const t of e.tokens?.tokens ?? []) {
        out.tokens.push(t.tokenId);
        onToken?.();
      }
      if (e.finished) out.finished = true;
    }
  } catch (err) {
    out.error = err as AppError;
  }
  return out;
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Settles within `ms` or fails the test: a stream that hangs is the bug R7 is about. */
function within<T>(ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still running after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

describe("health-aware routing (R13)", () => {
  it("stops choosing a worker within 1 s of NOT_SERVING and chooses it again within 1 s of SERVING", async () => {
    const a = await scripted();
    const b = await scripted();
    const pool = poolOver([a.address, b.address]);
    await waitFor("both watches to report SERVING", () => pool.health(a.address) === "serving" && pool.health(b.address) === "serving");
    // Equal load: the first listed worker wins the tie.
    expect((await run(pool)).finished).toBe(true);
    expect(a.requests).toHaveLength(1);

    a.setHealth("NOT_SERVING");
    const flipped = performance.now();
    while (a.requests.length + b.requests.length < 100) {
      const before = b.requests.length;
      await run(pool);
      if (b.requests.length > before) break;
    }
    expect(performance.now() - flipped).toBeLessThan(1000);
    const onA = a.requests.length;
    for (let i = 0; i < 10; i++) expect((await run(pool)).finished).toBe(true);
    expect(a.requests).toHaveLength(onA);
    expect(pool.models()).toEqual([MODEL]);

    a.setHealth("SERVING");
    const back = performance.now();
    while (a.requests.length === onA && performance.now() - back < 2000) await run(pool);
    expect(a.requests.length).toBe(onA + 1);
    expect(performance.now() - back).toBeLessThan(1000);
  });

  it("answers 503 service_unavailable, not 404, while every worker of the model is NOT_SERVING", async () => {
    const a = await scripted();
    const pool = poolOver([a.address]);
    a.setHealth("NOT_SERVING");
    await waitFor("the watch to report NOT_SERVING", () => pool.health(a.address) === "not_serving");
    const out = await run(pool);
    expect(out.error?.code).toBe("service_unavailable");
    expect(out.error?.retryable).toBe(true);
    expect(a.requests).toHaveLength(0);
    expect(pool.models()).toEqual([]);
  });

  it("a model served since start but listed by no worker now (restart, kill), or any model before the first roster: 503, not 404", async () => {
    const a = await scripted();
    const members: ReturnType<typeof readyMember>[] = [];
    let age: number | undefined;
    const directory = { members: () => members, healthy: () => true, rosterAgeMs: () => age, close() {} };
    const pool = new WorkerPool(directory, log, { healthBackoff: { initialMs: 50, maxMs: 500, recheckMs: 100 } });
    cleanup.push(() => pool.close());
    const before = await run(pool);
    expect(before.error?.code).toBe("service_unavailable");
    expect(before.error?.retryAfterMs).toBeGreaterThan(0);
    age = 0;
    expect((await run(pool)).error?.code).toBe("model_not_found");
    members.push(readyMember(a.address, MODEL, "w0"));
    expect((await run(pool)).tokens).toEqual(TOKENS);
    members.length = 0;
    const gone = await run(pool);
    expect(gone.error?.code).toBe("service_unavailable");
    expect(gone.error?.retryable).toBe(true);
  });

  it("routes to a worker without a health service (UNIMPLEMENTED) as gRPC health checking does", async () => {
    const a = await scripted({ health: false });
    const pool = poolOver([a.address]);
    await waitFor("the watch to give up", () => pool.health(a.address) === "unmonitored");
    expect((await run(pool)).finished).toBe(true);
    expect(a.requests).toHaveLength(1);
  });

  it("marks a killed worker unreachable, and serving again once a worker is back at its address", async () => {
    const a = await scripted();
    const b = await scripted();
    const pool = poolOver([a.address, b.address]);
    await waitFor("SERVING", () => pool.health(a.address) === "serving");
    a.kill();
    await waitFor("the watch to fail", () => pool.health(a.address) === "unreachable", 1000);
    expect((await run(pool)).finished).toBe(true);
    expect(b.requests).toHaveLength(1);
    // Reconnect attempts back off (50 ms doubling to 500 ms here) and find the restarted worker.
    await new Promise((r) => setTimeout(r, 300));
    const port = Number(a.address.split(":")[1]);
    const again = await scripted({ port });
    await waitFor("the watch to reconnect", () => pool.health(a.address) === "serving", 2000);
    expect((await run(pool)).finished).toBe(true);
    expect(again.requests).toHaveLength(1);
  });

  it("closes the watch of a worker that leaves the directory, and every watch on close()", async () => {
    const a = await scripted();
    const b = await scripted();
    let members = [readyMember(a.address, MODEL, "a"), readyMember(b.address, MODEL, "b")];
    const directory = { members: () => members, healthy: () => true, rosterAgeMs: () => 0, close() {} };
    const pool = new WorkerPool(directory, log, { syncIntervalMs: 20 });
    cleanup.push(() => pool.close());
    await waitFor("both watches", () => a.watches() === 1 && b.watches() === 1);
    members = members.slice(1);
    await waitFor("a's watch to close", () => a.watches() === 0, 1000);
    expect(pool.health(a.address)).toBeUndefined();
    expect((await run(pool)).finished).toBe(true);
    expect(b.requests).toHaveLength(1);
    pool.close();
    await waitFor("b's watch to close", () => b.watches() === 0, 1000);
  });
});

describe("retry before the first token (R12)", () => {
  it("a worker killed just before the request: the request completes on the other, the caller sees no error", async () => {
    const a = await scripted();
    const b = await scripted();
    const pool = poolOver([a.address, b.address]);
    await waitFor("SERVING", () => pool.health(a.address) === "serving" && pool.health(b.address) === "serving");
    a.kill();
    // No waiting for the watch: whether it or the failed Generate notices first, the caller must not.
    for (let i = 0; i < 5; i++) {
      const out = await run(pool);
      expect(out.error).toBeUndefined();
      expect(out).toEqual({ tokens: TOKENS, finished: true });
    }
    expect(b.requests).toHaveLength(5);
  });

  it("an address nobody listens on (connection refused) is skipped without an error", async () => {
    const gone = await scripted();
    const deadAddress = gone.address;
    gone.kill();
    const b = await scripted();
    const pool = poolOver([deadAddress, b.address]);
    const out = await run(pool);
    expect(out).toEqual({ tokens: TOKENS, finished: true });
    expect(b.requests).toHaveLength(1);
  });

  it.each([
    ["NOT_READY", status.UNAVAILABLE, ErrorKind.ERROR_KIND_NOT_READY],
    ["QUEUE_FULL", status.RESOURCE_EXHAUSTED, ErrorKind.ERROR_KIND_QUEUE_FULL],
    ["UNAVAILABLE without detail", status.UNAVAILABLE, undefined],
  ])("a healthy worker refusing with %s before any token: retried once on the other worker", async (_name, code, kind) => {
    const a = await scripted({ fail: { afterTokens: 0, code, kind } });
    const b = await scripted();
    const pool = poolOver([a.address, b.address]);
    await waitFor("SERVING", () => pool.health(a.address) === "serving" && pool.health(b.address) === "serving");
    const out = await run(pool);
    expect(out).toEqual({ tokens: TOKENS, finished: true });
    expect(a.requests).toHaveLength(1);
    expect(b.requests).toHaveLength(1);
  });

  it("when every worker refuses, each is tried once and the last refusal surfaces", async () => {
    const full = { afterTokens: 0, code: status.RESOURCE_EXHAUSTED, kind: ErrorKind.ERROR_KIND_QUEUE_FULL, retryAfterMs: 750 };
    const a = await scripted({ fail: full });
    const b = await scripted({ fail: full });
    const pool = poolOver([a.address, b.address]);
    await waitFor("SERVING", () => pool.health(a.address) === "serving" && pool.health(b.address) === "serving");
    const out = await run(pool);
    expect(out.error?.code).toBe("overloaded");
    expect(out.error?.retryAfterMs).toBe(750);
    expect(a.requests).toHaveLength(1);
    expect(b.requests).toHaveLength(1);
  });

  it("a request the worker rejects as invalid is not retried", async () => {
    const a = await scripted({ fail: { afterTokens: 0, code: status.INVALID_ARGUMENT, kind: ErrorKind.ERROR_KIND_INVALID_ARGUMENT } });
    const b = await scripted();
    const pool = poolOver([a.address, b.address]);
    await waitFor("SERVING", () => pool.health(a.address) === "serving" && pool.health(b.address) === "serving");
    const out = await run(pool);
    expect(out.error?.code).toBe("invalid_request_error");
    expect(b.requests).toHaveLength(0);
  });

  it("a failure after the first token surfaces as a retryable error and the other worker sees no request", async () => {
    const a = await scripted({ fail: { afterTokens: 2, code: status.UNAVAILABLE } });
    const b = await scripted();
    const pool = poolOver([a.address, b.address]);
    await waitFor("SERVING", () => pool.health(a.address) === "serving" && pool.health(b.address) === "serving");
    const out = await run(pool);
    expect(out.tokens).toEqual(TOKENS.slice(0, 2));
    expect(out.finished).toBe(false);
    expect(out.error?.code).toBe("service_unavailable");
    expect(out.error?.retryable).toBe(true);
    expect(a.requests).toHaveLength(1);
    expect(b.requests).toHaveLength(0);
  });
});

describe("cancellation", () => {
  it("aborting the signal mid-stream cancels the worker's call and is not retried elsewhere", async () => {
    const a = await scripted({ tokenIntervalMs: 20 });
    const b = await scripted();
    const pool = poolOver([a.address, b.address]);
    await waitFor("SERVING", () => pool.health(a.address) === "serving" && pool.health(b.address) === "serving");
    const controller = new AbortController();
    const request = GenerateRequest.fromPartial({ requestId: "abort-me", promptTokenIds: [1], maxTokens: 10 });
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const e of pool.generate(MODEL, request, controller.signal)) {
          seen.push(...(e.tokens?.tokens.map((t) => t.tokenId) ?? []));
          if (seen.length === 2) controller.abort();
        }
      })(),
    ).rejects.toThrow();
    expect(seen).toEqual(TOKENS.slice(0, 2));
    await waitFor("the worker to see the cancellation", () => a.cancelled.includes("abort-me"), 1000);
    expect(b.requests).toHaveLength(0);
  });

  it("a caller that stops reading cancels the worker's call", async () => {
    const a = await scripted({ tokenIntervalMs: 20 });
    const pool = poolOver([a.address]);
    const request = GenerateRequest.fromPartial({ requestId: "walk-away", promptTokenIds: [1], maxTokens: 10 });
    for await (const e of pool.generate(MODEL, request, new AbortController().signal)) if (e.tokens) break;
    await waitFor("the worker to see the cancellation", () => a.cancelled.includes("walk-away"), 1000);
  });
});

/** Every stream settled; those that failed had a token already and got a retryable error; the rest completed. */
function expectR7(outcomes: Outcome[], fullLength?: number): { completed: number; failed: number } {
  const failed = outcomes.filter((o) => o.error);
  for (const o of failed) {
    expect(o.tokens.length, "a stream failed before its first token instead of being retried").toBeGreaterThan(0);
    expect(o.error?.code).toBe("service_unavailable");
    expect(o.error?.retryable).toBe(true);
  }
  const completed = outcomes.filter((o) => !o.error);
  for (const o of completed) {
    expect(o.finished).toBe(true);
    if (fullLength !== undefined) expect(o.tokens).toHaveLength(fullLength);
    else expect(o.tokens.length).toBeGreaterThan(0);
  }
  return { completed: completed.length, failed: failed.length };
}

describe("one GenerateStream per worker", () => {
  it("concurrent generations share one stream, each gets its own tokens; after the worker restarts a new stream carries them", async () => {
    const w = await scripted({ tokenIntervalMs: 5 });
    const pool = poolOver([w.address]);
    const outcomes = await Promise.all(Array.from({ length: 12 }, () => run(pool)));
    for (const o of outcomes) expect(o).toEqual({ tokens: TOKENS, finished: true });
    expect(w.requests).toHaveLength(12);
    expect(w.streamsOpened()).toBe(1);
    // The worker dies and comes back at the same address: the broken stream is replaced.
    const port = Number(w.address.split(":")[1]);
    w.kill();
    const again = await scripted({ port });
    await waitFor("serving again", () => pool.health(again.address) === "serving");
    expect(await run(pool)).toEqual({ tokens: TOKENS, finished: true });
    expect(again.streamsOpened()).toBe(1);
  });
});

describe("a slow reader", () => {
  it("gets every event in order when it reads far slower than the worker writes", async () => {
    const many = Array.from({ length: 2000 }, (_, i) => i + 1);
    const w = await scripted({ fallback: many });
    const pool = poolOver([w.address]);
    const request = GenerateRequest.fromPartial({ requestId: `r${++seq}`, promptTokenIds: [1, 2, 3], maxTokens: many.length });
    const seen: number[] = [];
    let finished = false;
    for await (const e of pool.generate(MODEL, request, new AbortController().signal)) {
      // After the first event the worker has written everything while nothing is read: the queue fills.
      if (seen.length === 0) await new Promise((r) => setTimeout(r, 300));
      for (const t of e.tokens?.tokens ?? []) seen.push(t.tokenId);
      if (e.finished) finished = true;
    }
    expect(seen).toEqual(many);
    expect(finished).toBe(true);
  });
});

describe("a worker killed under load (R7)", () => {
  it("scripted: 20 streams over 2 workers, one force-shut: no hang, streams without a token complete on the other", async () => {
    const a = await scripted({ tokenIntervalMs: 100 });
    const b = await scripted({ tokenIntervalMs: 100 });
    const pool = poolOver([a.address, b.address]);
    await waitFor("SERVING", () => pool.health(a.address) === "serving" && pool.health(b.address) === "serving");
    // Ten streams that have a token when the kill comes, ten that do not (first token due 100 ms later).
    const started: boolean[] = Array(10).fill(false);
    const early = started.map((_, i) =>
      run(pool, TOKENS.length, () => {
        started[i] = true;
      }),
    );
    await waitFor("a first token on every early stream", () => started.every(Boolean));
    const late = Array.from({ length: 10 }, () => run(pool));
    await new Promise((r) => setTimeout(r, 20));
    a.kill();
    const outcomes = await within(5000, Promise.all([...early, ...late]));
    const { completed, failed } = expectR7(outcomes, TOKENS.length);
    expect(failed).toBeGreaterThan(0);
    // Everything that completed ran on b, the late streams first sent to a included.
    expect(b.requests).toHaveLength(completed);
    expect(completed).toBeGreaterThan(10);
  });

  describe("real worker processes", () => {
    let workers: WorkerProcess[] = [];
    afterEach(async () => {
      await Promise.all(workers.map((w) => w.stop()));
      workers = [];
    });

    it("20 streams over 2 workers, SIGKILL one: no hang, no stream fails before its first token; SIGTERM drains the other", async () => {
      const dir = join(mkdtempSync(join(tmpdir(), "pool-model-")), "tiny");
      writeSyntheticCheckpoint({ shape: SHAPES.tiny, out: dir, seed: 5 });
      workers = await Promise.all([0, 1].map(() => spawnWorker({ WORKER_MODEL_PATH: dir, WORKER_MODEL_NAME: MODEL })));
      const [a, b] = workers as [WorkerProcess, WorkerProcess];
      const pool = poolOver([a.address, b.address]);
      await waitFor("SERVING", () => pool.health(a.address) === "serving" && pool.health(b.address) === "serving");
      const maxTokens = 64;
      // At the first token anywhere: ten more streams, half of them to a, which dies before it can have
      // read them (they must complete on b), while a's first ten are mid-stream (they fail, retryably).
      const late: Array<Promise<Outcome>> = [];
      const kill = () => {
        if (late.length > 0) return;
        for (let i = 0; i < 10; i++) late.push(run(pool, maxTokens));
        a.process.kill("SIGKILL");
      };
      const early = Array.from({ length: 10 }, () => run(pool, maxTokens, kill));
      await waitFor("the first token", () => late.length > 0, 10_000);
      const outcomes = await within(15_000, Promise.all([...early, ...late]));
      expectR7(outcomes);
      for (const o of outcomes.slice(10)) {
        expect(o.error).toBeUndefined();
        expect(o.finished).toBe(true);
      }
      await waitFor("the killed worker to be unroutable", () => pool.health(a.address) === "unreachable", 1000);
      // The pool's health watch does not hold a draining worker open (its graceful shutdown waits for
      // every open call): SIGTERM with the pool still watching exits well within the grace period.
      const t0 = performance.now();
      await b.stop();
      expect(performance.now() - t0).toBeLessThan(5000);
    }, 60_000);
  });
});
