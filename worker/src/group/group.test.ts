/**
 * Workers in orchestrated mode through a real orchestrator (real Redis, real gRPC): a worker waits
 * NOT_SERVING until placed; a group of one serves the real native engine; for groups of two the rank
 * engines are a test double (the layer under test is assignment → open / close → health and state),
 * dissolved when a rank leaves and re-formed with a newcomer.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "@expertmesh/common";
import { freePort, type RedisServer, startRedisServer } from "@expertmesh/common/testing";
import { SHAPES } from "@expertmesh/kernels";
import { writeSyntheticCheckpoint } from "@expertmesh/kernels/checkpoint";
import { type RunningOrchestrator, startOrchestrator } from "@expertmesh/orchestrator/app";
import { OrchestratorConfigSchema } from "@expertmesh/orchestrator/config";
import type { GroupAssignment } from "@expertmesh/proto/cluster";
import { type GenerateResponse, Priority } from "@expertmesh/proto/worker";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningWorker, startWorker } from "../app.ts";
import { WorkerConfigSchema } from "../config.ts";
import { NoModelEngine } from "../engine/no-model-engine.ts";
import { spawnWorker } from "../testing/worker-process.ts";
import type { GroupEngineFactory } from "./group-agent.ts";

const log = createLogger("worker-test", "silent");
let redis: RedisServer;
const orchestrators: RunningOrchestrator[] = [];

beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => {
  for (const o of orchestrators) await o.close();
  await redis?.stop();
});

async function orchestrator(prefix: string, worldSize: number): Promise<RunningOrchestrator> {
  const o = await startOrchestrator(
    OrchestratorConfigSchema.parse({
      redis: { url: redis.url, key_prefix: prefix },
      grpc: { port: 0 },
      membership: { lease_ttl_ms: 1_000, prune_interval_ms: 100 },
      groups: { world_size: worldSize },
      log_level: "silent",
      batch: { metrics_port: 0 },
    }),
    log,
  );
  orchestrators.push(o);
  return o;
}

async function until(ok: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A rank engine double that reports itself ready (it is never asked to generate here). */
class ReadyStub extends NoModelEngine {
  override readonly ready: boolean = true;
}

describe("orchestrated workers", () => {
  it("a group of one: waits until placed, then serves the real engine", async () => {
    const o = await orchestrator("g1:", 1);
    const dir = join(mkdtempSync(join(tmpdir(), "group-model-")), "tiny");
    writeSyntheticCheckpoint({ shape: SHAPES.tiny, out: dir, seed: 5 });
    // spawnWorker resolves once grpc.health.v1 says SERVING: only after the orchestrator placed it.
    const w = await spawnWorker({
      WORKER_MODEL_PATH: dir,
      WORKER_MODEL_NAME: "gpt-oss-tiny",
      WORKER_GROUP_MODE: "orchestrated",
      WORKER_ORCHESTRATOR_ADDRESS: o.address,
      WORKER_HEARTBEAT_MS: "100",
    });
    try {
      const events: GenerateResponse[] = [];
      const stream = w.client.generate({
        requestId: "g1",
        promptTokenIds: [1, 2, 3],
        maxTokens: 4,
        stopTokenIds: [],
        priority: Priority.PRIORITY_ONLINE,
        deadlineUnixMs: 0,
        clampMaxTokens: false,
        maxReasoningTokens: 0,
      });
      for await (const e of stream as AsyncIterable<GenerateResponse>) events.push(e);
      expect(events.flatMap((e) => e.tokens?.tokens ?? [])).toHaveLength(4);
      expect(events.at(-1)?.finished).toBeDefined();
    } finally {
      await w.stop();
    }
  }, 60_000);

  it("a group worker's log lines carry one rank key, the group's (raw JSON text: JSON.parse hides a duplicate); grammar tables come before the lease", async () => {
    const o = await orchestrator("g-logs:", 1);
    const dir = join(mkdtempSync(join(tmpdir(), "group-model-")), "tiny");
    writeSyntheticCheckpoint({ shape: SHAPES.tiny, out: dir, seed: 5 });
    let out = "";
    const w = await spawnWorker(
      {
        LOG_LEVEL: "info",
        WORKER_MODEL_PATH: dir,
        WORKER_MODEL_NAME: "gpt-oss-tiny",
        WORKER_GROUP_MODE: "orchestrated",
        WORKER_ORCHESTRATOR_ADDRESS: o.address,
        WORKER_HEARTBEAT_MS: "100",
      },
      undefined,
      (chunk) => {
        out += chunk;
      },
    );
    await w.stop();
    const lines = out.split("\n").filter((l) => l.startsWith("{"));
    const joined = lines.filter((l) => l.includes('"joining group"') || l.includes('"group engine ready"'));
    expect(joined).toHaveLength(2);
    for (const line of lines) {
      // A nested shard {rank, world, …} (the "model loaded" line) is not a second top-level key.
      const topLevel = line.replace(/"shard":\{[^}]*\}/g, "");
      expect(topLevel.match(/"rank":/g)?.length ?? 0, line).toBeLessThanOrEqual(1);
    }
    for (const line of joined) expect(line.match(/"rank":/g)).toHaveLength(1);
    // The grammar tables (o200k vocabulary) are built before the worker takes a lease: built by its first
    // constrained request instead, they held the event loop, heartbeats included, past a loaded machine's lease.
    const at = (msg: string) => lines.findIndex((l) => l.includes(`"msg":"${msg}"`));
    expect(at("grammar tables built")).toBeGreaterThanOrEqual(0);
    expect(at("grammar tables built")).toBeLessThan(at("registered with the orchestrator"));
  }, 60_000);

  it("groups of two: placed, dissolved when a rank leaves, re-formed with a newcomer", async () => {
    const o = await orchestrator("g2:", 2);
    const opened: Array<{ worker: string; a: GroupAssignment; closed: boolean }> = [];
    const factory = (worker: string): GroupEngineFactory => ({
      async open(a) {
        const entry = { worker, a, closed: false };
        opened.push(entry);
        return {
          engine: new ReadyStub("gpt-oss-tiny", { blockSize: 16, blocks: 8, maxNumSeqs: 4, maxTokensPerStep: 64 }),
          close: async () => {
            entry.closed = true;
          },
        };
      },
    });
    const start = async (id: string): Promise<RunningWorker> => {
      const config = WorkerConfigSchema.parse({
        worker_id: id,
        log_level: "silent",
        model: { name: "gpt-oss-tiny" },
        grpc: { port: await freePort() },
        metrics: { port: 0 },
        orchestrator: { address: o.address, heartbeat_ms: 100 },
        group: { mode: "orchestrated" },
      });
      return startWorker(config, log, undefined, factory(id));
    };
    const [a, b] = [await start("w-a"), await start("w-b")];
    expect(a.engine.ready).toBe(false);
    expect(a.engine.notReadyReason).toMatch(/waiting for the orchestrator/);
    await until(() => a.engine.ready && b.engine.ready);
    const first = opened.map((e) => [e.worker, e.a.rank, e.a.worldSize]);
    expect(first.sort()).toEqual([
      ["w-a", 0, 2],
      ["w-b", 1, 2],
    ]);

    await b.close(); // leaves the roster: the group dissolves and w-a goes back to waiting
    await until(() => !a.engine.ready);
    expect(opened.find((e) => e.worker === "w-a")?.closed).toBe(true);
    expect(a.engine.notReadyReason).toMatch(/re-formed/);

    const c = await start("w-c");
    await until(() => a.engine.ready && c.engine.ready);
    const again = opened.filter((e) => !e.closed);
    expect(again.map((e) => e.worker).sort()).toEqual(["w-a", "w-c"]);
    expect(again[0]?.a.generation).toBeGreaterThan(opened[0]?.a.generation ?? 0);
    await a.close();
    await c.close();
  }, 30_000);
});
