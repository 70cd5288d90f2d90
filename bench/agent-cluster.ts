/**
 * A real serving cluster for bench/agent and the tool-loop tests: Redis, the orchestrator, G worker
 * processes on one tiny checkpoint (each its own engine group, heartbeating its load and prefix summary)
 * and a gateway reading the roster from the orchestrator, as deployed — only the gateway runs in this
 * process. close() stops everything it started.
 *
 * With warmTools, each worker is warmed before the cluster is handed out: one constrained generation of a prompt shorter
 * than a block (nothing cached, nothing routed on), so that the grammar compiler's one-time start (seconds
 * on a loaded machine) and the tools' grammar are ready, as on a worker that has been serving. Without it
 * every first turn of a fresh cluster waits for that start, and none finds another's prefix cached.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "@expertmesh/common";
import { freePort, killOnExit, type RedisServer, startRedisServer } from "@expertmesh/common/testing";
import { OrchestratorDirectory, startTestGateway, type TestGateway } from "@expertmesh/gateway/testing";
import { CONSTRAINT_SPEC_VERSION, type ConstraintSpec, encodeText } from "@expertmesh/grammar";
import { SHAPES } from "@expertmesh/kernels";
import { writeSyntheticCheckpoint } from "@expertmesh/kernels/checkpoint";
import { MemberState } from "@expertmesh/proto/cluster";
import { GenerateRequest, type GenerateResponse, Priority } from "@expertmesh/proto/worker";
import { spawnWorker, type WorkerProcess } from "@expertmesh/worker/testing";
import { Metadata } from "@grpc/grpc-js";

export const AGENT_MODEL = "gpt-oss-tiny";

export interface AgentClusterOptions {
  groups: number;
  policy: "cache_aware" | "least_load";
  /** GATEWAY_TOOL_PIN_MS (0: no pins). */
  toolPinMs: number;
  /** KV blocks per worker (WORKER_KV_NUM_BLOCKS). */
  kvBlocks: number;
  maxNumSeqs?: number;
  /** Heartbeat and roster refresh period: how fresh the published summaries and loads are. */
  refreshMs?: number;
  /** How long a roster may take to list every worker ready (loaded machines: generous). */
  readyTimeoutMs?: number;
  /** Warm each worker up with a forced call of these function tools (name, strict JSON schema); absent: no warm-up. */
  warmTools?: ReadonlyArray<{ name: string; parameters: Record<string, unknown> }>;
}

export interface AgentCluster {
  /** http://127.0.0.1:PORT of the gateway. */
  base: string;
  gateway: TestGateway;
  workers: WorkerProcess[];
  directory: OrchestratorDirectory;
  /** The gateway's Prometheus text. */
  gatewayMetrics(): Promise<string>;
  close(): Promise<void>;
}

/** A tiny random-weight checkpoint with the full o200k_harmony vocabulary (written once per directory). */
export function tinyCheckpoint(seed = 11): string {
  const dir = join(mkdtempSync(join(tmpdir(), "agent-model-")), "tiny");
  writeSyntheticCheckpoint({ shape: SHAPES.tiny, out: dir, seed });
  return dir;
}

export async function startAgentCluster(checkpoint: string, o: AgentClusterOptions): Promise<AgentCluster> {
  const refreshMs = o.refreshMs ?? 500;
  const undo: Array<() => Promise<unknown> | unknown> = [];
  const close = async () => {
    for (const f of undo.reverse()) await f();
  };
  try {
    const redis: RedisServer = await startRedisServer();
    undo.push(() => redis.stop());
    const orchestratorPort = await freePort();
    const orchestrator = startOrchestrator(orchestratorPort, redis.url);
    undo.push(() => stopChild(orchestrator));
    const address = `127.0.0.1:${orchestratorPort}`;
    const workers = await Promise.all(
      Array.from({ length: o.groups }, () =>
        spawnWorker({
          WORKER_MODEL_PATH: checkpoint,
          WORKER_MODEL_NAME: AGENT_MODEL,
          WORKER_ORCHESTRATOR_ADDRESS: address,
          WORKER_HEARTBEAT_MS: String(refreshMs),
          WORKER_KV_NUM_BLOCKS: String(o.kvBlocks),
          WORKER_MAX_NUM_SEQS: String(o.maxNumSeqs ?? 16),
        }),
      ),
    );
    for (const w of workers) undo.push(() => w.stop());
    const tools = o.warmTools;
    if (tools) await Promise.all(workers.map((w) => warm(w, tools)));
    const directory = new OrchestratorDirectory(address, refreshMs, createLogger("agent-directory", "silent"));
    const gateway = await startTestGateway({
      directory,
      model: AGENT_MODEL,
      config: { router: { policy: o.policy, tool_pin_ms: o.toolPinMs }, request_timeout_ms: 600_000 },
    });
    undo.push(() => gateway.close());
    await waitFor(
      () => directory.members().filter((m) => m.state === MemberState.MEMBER_STATE_READY).length === o.groups,
      o.readyTimeoutMs ?? 120_000,
      `${o.groups} ready workers in the roster`,
    );
    return {
      base: gateway.base,
      gateway,
      workers,
      directory,
      gatewayMetrics: async () => (await fetch(`${gateway.base}/metrics`)).text(),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

function startOrchestrator(port: number, redisUrl: string): ChildProcess {
  const main = new URL("../orchestrator/src/main.ts", import.meta.url).pathname;
  return killOnExit(
    spawn(process.execPath, [main], {
      env: {
        ...process.env,
        LOG_LEVEL: "warn",
        REDIS_URL: redisUrl,
        ORCHESTRATOR_PORT: String(port),
        ORCHESTRATOR_METRICS_PORT: "0",
        ORCHESTRATOR_REDIS_KEY_PREFIX: `agent-${process.pid}-${Date.now()}:`,
        ORCHESTRATOR_GROUP_WORLD_SIZE: "1",
        // Generous: on a loaded 2-core machine a heartbeat may take seconds; a lost lease would drop a group.
        ORCHESTRATOR_LEASE_TTL_MS: "10000",
        ORCHESTRATOR_PRUNE_INTERVAL_MS: "200",
      },
      stdio: "inherit",
    }),
  );
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await exited;
}

/** Polls `ok` every 100 ms; throws naming `what` after `ms`. */
export async function waitFor(ok: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** One constrained generation on `w` (a forced call of `tools`, a 4-token reasoning budget); resolves when it ends. */
async function warm(w: WorkerProcess, tools: NonNullable<AgentClusterOptions["warmTools"]>): Promise<void> {
  const spec: ConstraintSpec = {
    version: CONSTRAINT_SPEC_VERSION,
    guard: true,
    tools: tools.map((t) => ({ name: t.name, strict: true, parameters: t.parameters })),
    toolChoice: { kind: "required" },
    finalFormat: { kind: "text" },
  };
  const request = GenerateRequest.fromPartial({
    requestId: `warm-${w.address}`,
    promptTokenIds: encodeText("warm up"),
    maxTokens: 64,
    maxReasoningTokens: 4,
    priority: Priority.PRIORITY_ONLINE,
    constraint: { version: CONSTRAINT_SPEC_VERSION, specJson: JSON.stringify(spec) },
  });
  await new Promise<void>((resolve, reject) => {
    const call = w.client.generate(request, new Metadata());
    call.on("data", (_e: GenerateResponse) => {});
    call.on("end", () => resolve());
    call.on("error", reject);
  });
}
