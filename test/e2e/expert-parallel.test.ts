/**
 * Expert parallelism through the whole stack, as processes: Redis, the orchestrator forming groups of W,
 * W orchestrated workers per group (each its shard, Gloo over loopback, rendezvous in Redis), and the
 * gateway discovering them — with the official openai SDK as the client.
 * - W = 1, 2, 4 (tiny model with 8 KV heads): greedy tokens identical and logprobs within 1e-4 of W = 1.
 * - SIGKILL one rank of a serving group mid-stream: the stream ends with an error (not a hang) within the
 *   watchdog + 1 s, new requests succeed on the other group, and the group re-forms with a new worker.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, type RedisServer, startRedisServer } from "@expertmesh/common/testing";
import { SHAPES } from "@expertmesh/kernels";
import { writeSyntheticCheckpoint } from "@expertmesh/kernels/checkpoint";
import { type Member, MembershipClient } from "@expertmesh/proto/cluster";
import { spawnWorker, type WorkerProcess } from "@expertmesh/worker/testing";
import { credentials } from "@grpc/grpc-js";
import OpenAI from "openai";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Cleanup, until } from "./support.ts";

const MODEL = "gpt-oss-tiny-kv8";
const WATCHDOG_MS = 2_000;
let redis: RedisServer;
let checkpoint: string;
const cleanup = new Cleanup();

beforeAll(async () => {
  redis = await startRedisServer();
  checkpoint = join(mkdtempSync(join(tmpdir(), "ep-model-")), "tiny-kv8");
  writeSyntheticCheckpoint({ shape: { ...SHAPES.tiny, numQHeads: 8, numKvHeads: 8, numExperts: 8 }, out: checkpoint, seed: 11 });
});
afterEach(async () => {
  await cleanup.run();
});
afterAll(async () => {
  await redis?.stop();
});

interface Cluster {
  client: OpenAI;
  members(): Promise<Member[]>;
  worker(env?: Record<string, string>): Promise<WorkerProcess>;
}

/** Orchestrator (groups of `world`), `workers` orchestrated workers, and a gateway that routes to the groups. */
async function cluster(world: number, workers: number): Promise<Cluster> {
  const prefix = `ep${world}-${Date.now()}:`;
  const orchestratorPort = await freePort();
  const orchestrator = `127.0.0.1:${orchestratorPort}`;
  cleanup.service("orchestrator/src/main.ts", {
    REDIS_URL: redis.url,
    ORCHESTRATOR_PORT: String(orchestratorPort),
    ORCHESTRATOR_METRICS_PORT: String(await freePort()),
    ORCHESTRATOR_REDIS_KEY_PREFIX: prefix,
    ORCHESTRATOR_GROUP_WORLD_SIZE: String(world),
    ORCHESTRATOR_LEASE_TTL_MS: "1500",
    ORCHESTRATOR_PRUNE_INTERVAL_MS: "200",
  });
  const membership = new MembershipClient(orchestrator, credentials.createInsecure());
  cleanup.add(() => membership.close());
  const members = () =>
    new Promise<Member[]>((resolve, reject) => membership.listMembers({ model: "" }, (e, r) => (e ? reject(e) : resolve(r.members))));
  await until(members, (m) => Array.isArray(m));
  const worker = async (env: Record<string, string> = {}) => {
    const w = await spawnWorker({
      WORKER_MODEL_PATH: checkpoint,
      WORKER_MODEL_NAME: MODEL,
      WORKER_GROUP_MODE: "orchestrated",
      WORKER_ORCHESTRATOR_ADDRESS: orchestrator,
      WORKER_HEARTBEAT_MS: "200",
      WORKER_GROUP_COMM_TIMEOUT_MS: String(WATCHDOG_MS),
      WORKER_KV_NUM_BLOCKS: "256",
      WORKER_MAX_NUM_SEQS: "8",
      ...env,
    });
    cleanup.add(() => w.stop());
    return w;
  };
  // A worker is SERVING only once its group formed: start a group's ranks together.
  await Promise.all(Array.from({ length: workers }, () => worker()));
  const gatewayPort = await freePort();
  cleanup.service("gateway/src/main.ts", {
    GATEWAY_PORT: String(gatewayPort),
    GATEWAY_ORCHESTRATOR_ADDRESS: orchestrator,
    GATEWAY_DISCOVERY_REFRESH_MS: "200",
    GATEWAY_API_KEYS: "sk-ep-test-0123456789",
  });
  const base = `http://127.0.0.1:${gatewayPort}`;
  await until(
    () => fetch(`${base}/ready`).then((r) => r.status),
    (s) => s === 200,
  );
  return { client: new OpenAI({ apiKey: "sk-ep-test-0123456789", baseURL: `${base}/v1`, maxRetries: 0 }), members, worker };
}

/**
 * Greedy tokens with the log-softmax of the logits at every generated position (the token's and the top-5
 * alternatives': the API's view of the logits, which it does not return raw).
 */
async function greedy(client: OpenAI): Promise<{ tokens: string[]; logprobs: number[] }> {
  const r = await client.completions.create({ model: MODEL, prompt: "The expert mesh", max_tokens: 8, temperature: 0, logprobs: 5 });
  const lp = r.choices[0]?.logprobs;
  const top = (lp?.top_logprobs ?? []).flatMap((m) => Object.values(m ?? {}).sort((a, b) => b - a));
  return { tokens: lp?.tokens ?? [], logprobs: [...(lp?.token_logprobs ?? []), ...top] };
}

describe("expert-parallel groups through the gateway", () => {
  it("W = 2 and 4 generate exactly what W = 1 generates (token and top-5 logprobs within 1e-4)", async () => {
    const results = [];
    for (const world of [1, 2, 4]) {
      const c = await cluster(world, world);
      const listed = await c.members();
      expect(listed.filter((m) => m.worldSize === world && m.groupId !== "")).toHaveLength(world);
      results.push(await greedy(c.client));
      await cleanup.run();
    }
    const [one, ...others] = results;
    expect(one?.tokens).toHaveLength(8);
    expect(one?.logprobs.length).toBeGreaterThanOrEqual(8 + 8 * 4); // top-5 per position (token strings may collide)
    for (const r of others) {
      expect(r.tokens).toEqual(one?.tokens);
      expect(r.logprobs).toHaveLength(one?.logprobs.length ?? -1);
      r.logprobs.forEach((lp, i) => {
        expect(Math.abs(lp - (one?.logprobs[i] ?? 0))).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(lp)));
      });
    }
  }, 360_000);

  it("SIGKILL of a rank: its streams end with an error within the watchdog + 1 s, the other group serves, the group re-forms", async () => {
    const c = await cluster(2, 4);
    const listed = await c.members();
    expect(new Set(listed.map((m) => m.groupId)).size).toBe(2);
    // Streams on both groups, long enough to be mid-flight when a rank dies (and within what a request
    // may take beside the tool-loop pin share: ¾ of the 256 × 16-token pool).
    const streams = await Promise.all(
      [0, 1, 2, 3].map(async () => {
        const s = await c.client.completions.create({ model: MODEL, prompt: "Once", max_tokens: 3000, temperature: 1, stream: true });
        const it = s[Symbol.asyncIterator]();
        await it.next();
        return it;
      }),
    );
    const victim = listed.find((m) => m.rank === 1) as Member;
    const killedAt = performance.now();
    process.kill(Number(victim.workerId.split("-").at(-1)), "SIGKILL");
    // Requests sent right after the kill, before any token: some reach the broken group's leader, which
    // refuses them retryably once its all-reduce fails; the gateway retries those on the other group.
    const fresh = Promise.all(
      [0, 1, 2, 3, 4, 5].map(() => c.client.completions.create({ model: MODEL, prompt: "Quick", max_tokens: 3, temperature: 0 })),
    );
    // The victim's group's streams end with an error event within the watchdog + 1 s; the others go on.
    const outcomes = await Promise.all(
      streams.map(async (it) => {
        try {
          for (let e = await it.next(); !e.done; e = await it.next()) {
            if (performance.now() - killedAt > WATCHDOG_MS + 1_000) return "alive";
          }
          return "done";
        } catch {
          return performance.now() - killedAt < WATCHDOG_MS + 1_000 ? "error-in-time" : "error-late";
        }
      }),
    );
    expect(outcomes).toContain("error-in-time");
    expect(outcomes).not.toContain("error-late");
    for (const r of await fresh) expect(r.usage?.completion_tokens).toBe(3);
    // New requests succeed meanwhile (the healthy group, or a retry before the first token).
    const ok = await c.client.completions.create({ model: MODEL, prompt: "Hi", max_tokens: 4, temperature: 0 });
    expect(ok.usage?.completion_tokens).toBe(4);
    // A replacement worker and the broken group's survivor form a new group; new requests succeed.
    await c.worker();
    const reformed = await until(c.members, (ms) => {
      const placed = ms.filter((m) => m.groupId !== "");
      return placed.length === 4 && !placed.some((m) => m.workerId === victim.workerId || m.groupId === victim.groupId);
    });
    expect(new Set(reformed.map((m) => m.groupId)).size).toBe(2);
    const after = await c.client.completions.create({ model: MODEL, prompt: "Hello", max_tokens: 4, temperature: 0 });
    expect(after.usage?.completion_tokens).toBe(4);
  }, 240_000);
});
