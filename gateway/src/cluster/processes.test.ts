/**
 * A multi-process gateway as deployed (#25 item 5): gateway/src/main.ts spawned with GATEWAY_PROCESSES=2
 * in front of a real worker process (tiny synthetic model), discovering it through a Membership server,
 * driven by the official openai SDK over real HTTP. Both processes serve (each response names its process
 * in x-expertmesh-gateway-process); a per-key request limit and stored responses hold across them (kept
 * by the primary: no Redis here); /metrics sums both; a child killed with SIGKILL is replaced while
 * requests keep succeeding; SIGTERM to the primary drains a stream in flight and stops every process.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, killOnExit } from "@expertmesh/common/testing";
import { SHAPES } from "@expertmesh/kernels";
import { writeSyntheticCheckpoint } from "@expertmesh/kernels/checkpoint";
import { spawnWorker, type WorkerProcess } from "@expertmesh/worker/testing";
import type { Server } from "@grpc/grpc-js";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashKey } from "../domain/api-keys.ts";
import { startStubMembership } from "../testing/stub-membership.ts";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));
const MODEL = "gpt-oss-tiny";
const KEY = "sk-em-processes-0123456789";
/** A key allowed 6 requests per minute: the primary counts them for both processes. */
const LIMITED = "sk-em-processes-limited-01";
const PROCESS_HEADER = "x-expertmesh-gateway-process";
/**
 * node:cluster spreads connections, not requests, and a kept-alive connection stays with its process: every
 * request here comes on a connection of its own, so that consecutive requests alternate between the children.
 */
const FRESH_CONNECTION = { connection: "close" };
const sdk = (apiKey: string) => new OpenAI({ apiKey, baseURL: `${base}/v1`, maxRetries: 0, defaultHeaders: FRESH_CONNECTION });

let worker: WorkerProcess;
let membership: Server;
let gateway: ChildProcess;
let base: string;
let client: OpenAI;

/** Polls `probe` until it returns a value `ok` accepts (errors count as not yet). */
async function until<T>(probe: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined && ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`not reached within ${timeoutMs} ms (last: ${JSON.stringify(v)})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** `n` chat completions at once (as many connections, which the primary spreads over its children): the pid of each answer. */
async function chatAtOnce(n: number, c = client): Promise<string[]> {
  const answers = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      c.chat.completions
        .create({ model: MODEL, messages: [{ role: "user", content: `hi ${i}` }], max_completion_tokens: 2 })
        .withResponse(),
    ),
  );
  for (const a of answers) expect(a.data.object).toBe("chat.completion");
  return answers.map((a) => a.response.headers.get(PROCESS_HEADER) ?? "");
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The sum of a counter's samples whose labels include `labels`. */
function total(text: string, name: string, labels: string): number {
  return text
    .split("\n")
    .filter((l) => l.startsWith(`${name}{`) && l.includes(labels))
    .reduce((a, l) => a + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
}

beforeAll(async () => {
  const dir = join(mkdtempSync(join(tmpdir(), "processes-model-")), "tiny");
  writeSyntheticCheckpoint({ shape: SHAPES.tiny, out: dir, seed: 5 });
  worker = await spawnWorker({ WORKER_MODEL_PATH: dir, WORKER_MODEL_NAME: MODEL });
  const keysFile = join(mkdtempSync(join(tmpdir(), "processes-keys-")), "keys.json");
  writeFileSync(
    keysFile,
    JSON.stringify({
      keys: [
        { id: "main", sha256: hashKey(KEY) },
        { id: "limited", sha256: hashKey(LIMITED), requests_per_minute: 6 },
      ],
    }),
  );
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const stub = await startStubMembership(worker.address, MODEL);
  membership = stub.server;
  gateway = killOnExit(
    spawn(process.execPath, [MAIN], {
      env: {
        ...process.env,
        LOG_LEVEL: "warn",
        GATEWAY_PROCESSES: "2",
        GATEWAY_PORT: String(port),
        GATEWAY_ORCHESTRATOR_ADDRESS: stub.address,
        GATEWAY_DISCOVERY_REFRESH_MS: "500",
        GATEWAY_API_KEYS_FILE: keysFile,
        GATEWAY_RENDER_THREADS: "0",
      },
      stdio: ["ignore", "inherit", "inherit"],
    }),
  );
  // Ready: both children listen and route to the worker.
  await until(
    () =>
      Promise.all(
        [1, 2, 3, 4].map(() =>
          fetch(`${base}/ready`, { headers: FRESH_CONNECTION }).then(async (r) => ({
            pid: r.headers.get(PROCESS_HEADER),
            ready: r.ok,
            body: await r.text(),
          })),
        ),
      ),
    (answers) => answers.every((a) => a.ready) && new Set(answers.map((a) => a.pid)).size === 2,
    120_000,
  );
  client = sdk(KEY);
}, 180_000);

afterAll(async () => {
  gateway?.kill("SIGKILL");
  await worker?.stop();
  membership?.forceShutdown();
});

describe("GATEWAY_PROCESSES=2", () => {
  it("serves from both processes, with one request limit and one response store for both, and sums /metrics", async () => {
    const pids = await chatAtOnce(8);
    expect(new Set(pids).size).toBe(2);
    expect(pids).not.toContain(String(gateway.pid)); // the children answer, not the primary

    // 12 requests at once on a key allowed 6 per minute: 6 pass whichever process each lands on.
    const limited = sdk(LIMITED);
    const outcomes = await Promise.allSettled(
      Array.from({ length: 12 }, () =>
        limited.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "x" }], max_completion_tokens: 1 }),
      ),
    );
    expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(6);
    for (const o of outcomes) if (o.status === "rejected") expect(o.reason).toMatchObject({ status: 429, code: "rate_limit_exceeded" });

    // A stored response is found from either process.
    const created = await client.responses.create({ model: MODEL, input: "remember me", max_output_tokens: 16 });
    const reads = await Promise.all(Array.from({ length: 6 }, () => client.responses.retrieve(created.id).withResponse()));
    for (const r of reads) expect(r.data.id).toBe(created.id);
    expect(new Set(reads.map((r) => r.response.headers.get(PROCESS_HEADER))).size).toBe(2);

    // Both children's counts, whichever child answers the scrape (consecutive scrapes: one each).
    for (let i = 0; i < 2; i++) {
      const text = await (await fetch(`${base}/metrics`, { headers: FRESH_CONNECTION })).text();
      expect(total(text, "expertmesh_gateway_http_request_duration_seconds_count", 'route="/v1/chat/completions",status="200"')).toBe(14);
      expect(total(text, "expertmesh_gateway_http_request_duration_seconds_count", 'route="/v1/chat/completions",status="429"')).toBe(6);
    }
  });

  it("replaces a child killed with SIGKILL; requests keep succeeding", async () => {
    const before = new Set(await chatAtOnce(4));
    const victim = Number([...before][0]);
    process.kill(victim, "SIGKILL");
    await until(
      async () => alive(victim),
      (a) => !a,
    );
    // Every request succeeds meanwhile (the survivor takes them); the replacement shows up among them.
    const seen = await until(
      async () => new Set(await chatAtOnce(4)),
      (pids) => [...pids].some((p) => !before.has(p)),
    );
    expect(seen.has(String(victim))).toBe(false);
    const after = new Set(
      await until(
        () => chatAtOnce(8),
        (p) => new Set(p).size === 2,
      ),
    );
    expect(after.size).toBe(2);
  });

  it("SIGTERM to the primary drains a stream in flight, then every process exits", async () => {
    const children = new Set(await chatAtOnce(4));
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "a long answer" }],
      max_completion_tokens: 48,
      stream: true,
    });
    const exited = new Promise<number | null>((resolve) => gateway.once("exit", (code) => resolve(code)));
    let chunks = 0;
    let finish: string | null = null;
    for await (const chunk of stream) {
      if (chunks++ === 0) gateway.kill("SIGTERM");
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(finish).not.toBeNull(); // the stream ran to its end during the drain
    expect(await exited).toBe(0);
    for (const pid of children)
      await until(
        async () => alive(Number(pid)),
        (a) => !a,
        10_000,
      );
    await expect(fetch(`${base}/health`)).rejects.toThrow();
  });
});
