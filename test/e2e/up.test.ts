/**
 * UP, exactly as a user runs it: `bash scripts/up.sh`, then Ctrl-C. Ctrl-C is simulated as a terminal
 * does it: SIGINT to the whole foreground process group. Afterwards no process of that group may remain
 * and every port it opened must be closed. Each run has its own state directory (EXPERTMESH_RUN_DIR, a
 * temporary one) and free ports, so it never touches the user's `.run/` or a stack already running.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createConnection, createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "@expertmesh/common/testing";
import { type Member, MembershipClient } from "@expertmesh/proto/cluster";
import { credentials } from "@grpc/grpc-js";
import OpenAI, { toFile } from "openai";
import { afterAll, afterEach, describe, expect, it } from "vitest";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");

function groupMembers(pgid: number): number[] {
  const out = execFileSync("ps", ["-eo", "pid=,pgid="], { encoding: "utf8" });
  return out
    .trim()
    .split("\n")
    .map((l) => l.trim().split(/\s+/).map(Number))
    .filter(([, g]) => g === pgid)
    .map(([p]) => p as number);
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: "127.0.0.1", port }, () => {
      s.end();
      resolve(true);
    });
    s.on("error", () => resolve(false));
  });
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

/** A free port whose next `n - 1` ports are free too (UP's worker i listens on base + i). */
async function freeRange(n: number, avoid: number[]): Promise<number> {
  for (;;) {
    const base = await freePort();
    const range = Array.from({ length: n }, (_, i) => base + i);
    if (range.some((p) => avoid.includes(p) || p > 65535)) continue;
    if ((await Promise.all(range.slice(1).map(bindable))).every(Boolean)) return base;
  }
}

/** Every port UP listens on, free now, with room for two workers. */
async function freePorts() {
  const single = { GATEWAY_PORT: 0, ORCHESTRATOR_PORT: 0, ORCHESTRATOR_METRICS_PORT: 0, EXPERTMESH_REDIS_PORT: 0 };
  for (const k of Object.keys(single) as Array<keyof typeof single>) single[k] = await freePort();
  const WORKER_PORT = await freeRange(2, Object.values(single));
  const WORKER_METRICS_PORT = await freeRange(2, [...Object.values(single), WORKER_PORT, WORKER_PORT + 1]);
  return { ...single, WORKER_PORT, WORKER_METRICS_PORT };
}

type Ports = Awaited<ReturnType<typeof freePorts>>;

interface Up {
  proc: ChildProcess;
  pgid: number;
  runDir: string;
  output(): string;
  /** The URL of the "is up" line; rejects if UP exits first. */
  url: Promise<string>;
  exited: Promise<number | null>;
}

const started: Up[] = [];
const runDirs: string[] = [];
afterEach(() => {
  for (const up of started.splice(0)) if (up.proc.exitCode === null) process.kill(-up.pgid, "SIGKILL");
});
afterAll(() => {
  for (const dir of runDirs) rmSync(dir, { recursive: true, force: true });
});

/** UP in its own process group (as a shell runs a job) with `env` over the test's, in a fresh EXPERTMESH_RUN_DIR. */
function startUp(env: Record<string, string | number>, argv = ["scripts/up.sh"]): Up {
  const runDir = mkdtempSync(join(tmpdir(), "up-e2e-"));
  runDirs.push(runDir);
  const strings = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)]));
  const proc = spawn("bash", argv, {
    cwd: root,
    env: { ...process.env, EXPERTMESH_RUN_DIR: runDir, ...strings },
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const exited = new Promise<number | null>((resolve) => proc.on("exit", (code) => resolve(code)));
  const url = new Promise<string>((resolve, reject) => {
    const onData = (d: Buffer) => {
      output += d.toString();
      const m = /ExpertMesh is up: (http:\/\/\S+)/.exec(output);
      if (m?.[1]) resolve(m[1]);
    };
    proc.stdout?.on("data", onData);
    proc.stderr?.on("data", onData);
    void exited.then((code) => reject(new Error(`up.sh exited early with ${code}:\n${output}`)));
  });
  url.catch(() => undefined); // tests that expect an early exit never await it
  const up = { proc, pgid: proc.pid as number, runDir, output: () => output, url, exited };
  started.push(up);
  return up;
}

/** A chat completion through the official SDK with no retries: it must succeed on the first try. */
async function chat(url: string, model: string): Promise<OpenAI.Chat.Completions.ChatCompletion> {
  const openai = new OpenAI({ apiKey: "local-dev", baseURL: `${url}/v1`, maxRetries: 0 });
  return openai.chat.completions.create({ model, messages: [{ role: "user", content: "Hello!" }], max_tokens: 8, temperature: 0 });
}

describe("UP (scripts/up.sh)", () => {
  it("prints its URL once a chat completion succeeds at once, serves batches, leaves nothing running after Ctrl-C", async () => {
    const ports = await freePorts();
    const up = startUp(ports);
    const url = await up.url;
    expect(url).toBe(`http://127.0.0.1:${ports.GATEWAY_PORT}`);
    // Right after the "is up" line, before anything else: no 404 (model unknown) or 503 (no worker ready).
    const completion = await chat(url, "gpt-oss-synthetic");
    expect(completion.object).toBe("chat.completion");
    expect(completion.usage?.completion_tokens).toBeGreaterThan(0);
    expect((await fetch(`${url}/ready`)).status).toBe(200);
    const health = await fetch(`${url}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: "ok" });
    const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: Array<{ id: string }> };
    expect(models.data.map((m) => m.id)).toEqual(["gpt-oss-synthetic"]);
    // State and logs live in the run directory it was given, not in the repository's .run/.
    for (const f of ["logs/gateway.log", "logs/worker.log", "logs/orchestrator.log", "redis", "models/tiny-synthetic/config.json"]) {
      expect(existsSync(join(up.runDir, f)), f).toBe(true);
    }
    // A batch through the orchestrator's batch runner (BullMQ on the same Redis), back through the gateway.
    const openai = new OpenAI({ apiKey: "local-dev", baseURL: `${url}/v1`, maxRetries: 0 });
    const lines = ["b-1", "b-2"].map((id) =>
      JSON.stringify({
        custom_id: id,
        method: "POST",
        url: "/v1/chat/completions",
        body: { model: "gpt-oss-synthetic", messages: [{ role: "user", content: id }], max_tokens: 4 },
      }),
    );
    const input = await openai.files.create({ file: await toFile(Buffer.from(lines.join("\n")), "up.jsonl"), purpose: "batch" });
    const batch = await openai.batches.create({ input_file_id: input.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    await expect.poll(async () => (await openai.batches.retrieve(batch.id)).status, { timeout: 60_000, interval: 250 }).toBe("completed");
    const done = await openai.batches.retrieve(batch.id);
    expect(done.request_counts).toEqual({ total: 2, completed: 2, failed: 0 });
    const results = (await (await openai.files.content(done.output_file_id as string)).text()).trim().split("\n");
    expect(results.map((l) => JSON.parse(l).custom_id)).toEqual(["b-1", "b-2"]);
    expect(groupMembers(up.pgid).length).toBeGreaterThanOrEqual(5); // bash, redis, orchestrator, worker, gateway

    process.kill(-up.pgid, "SIGINT");
    expect(await up.exited).toBe(130);
    await expect.poll(() => groupMembers(up.pgid), { timeout: 10_000 }).toEqual([]);
    for (const port of Object.values(ports)) expect(await portOpen(port)).toBe(false);
  });

  it("a port already taken: UP exits non-zero at once with the failing service's log tail", async () => {
    const ports = await freePorts();
    const squatter: Server = createServer();
    await new Promise<void>((resolve) => squatter.listen(ports.ORCHESTRATOR_METRICS_PORT, "127.0.0.1", resolve));
    try {
      const t0 = performance.now();
      const up = startUp(ports);
      const code = await up.exited;
      const seconds = (performance.now() - t0) / 1000;
      expect(code, up.output()).not.toBe(0);
      expect(up.output()).not.toMatch(/ExpertMesh is up/);
      expect(up.output()).toMatch(/orchestrator exited while waiting/);
      expect(up.output()).toMatch(/EADDRINUSE/); // from the orchestrator's log, printed by UP
      expect(seconds).toBeLessThan(20); // setup's checks included; the orchestrator wait alone is 30 s
      await expect.poll(() => groupMembers(up.pgid), { timeout: 10_000 }).toEqual([]);
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  });

  it("W = 2 started in the background: one expert-parallel group of 2 serves at once; SIGHUP stops every child", async () => {
    const ports = await freePorts();
    const up = startBackgroundUp({ ...ports, EXPERTMESH_WORLD_SIZE: 2 });
    const url = await up.url;
    const completion = await chat(url, "gpt-oss-synthetic");
    expect(completion.usage?.completion_tokens).toBeGreaterThan(0);
    // The orchestrator's roster: two workers, ranks 0 and 1 of one group of world size 2.
    const membership = new MembershipClient(`127.0.0.1:${ports.ORCHESTRATOR_PORT}`, credentials.createInsecure());
    const members = await new Promise<Member[]>((resolve, reject) =>
      membership.listMembers({ model: "" }, (e, r) => (e ? reject(e) : resolve(r.members))),
    );
    membership.close();
    expect(members.map((m) => m.worldSize)).toEqual([2, 2]);
    expect(members.map((m) => m.rank).sort()).toEqual([0, 1]);
    expect(new Set(members.map((m) => m.groupId)).size).toBe(1);
    expect(members[0]?.groupId).not.toBe("");
    // Each rank's log says which group, rank and world it joined (the README's recipe greps for it).
    const joined = [0, 1].map((i) => readFileSync(join(up.runDir, `logs/worker-${i}.log`), "utf8"));
    const ranks = joined.map((log) => JSON.parse(log.split("\n").find((l) => l.includes("joined the group")) ?? "{}"));
    expect(ranks.map((r) => [r.world, r.groupId === members[0]?.groupId]).sort()).toEqual([
      [2, true],
      [2, true],
    ]);
    expect(ranks.map((r) => r.rank).sort()).toEqual([0, 1]);
    expect(groupMembers(up.pgid).length).toBeGreaterThanOrEqual(7); // 2 bash, redis, orchestrator, 2 workers, gateway
    await stopsEverything(up, "SIGHUP", ports, 2); // as a closed terminal or `kill -HUP` would
  });

  it("started in the background: `kill -INT <pid>` stops it and every child (bash starts such a job with SIGINT ignored)", async () => {
    const ports = await freePorts();
    const up = startBackgroundUp(ports);
    await chat(await up.url, "gpt-oss-synthetic");
    await stopsEverything(up, "SIGINT", ports, 1);
  });
});

/** As `bash scripts/up.sh &` from a script: the job starts with SIGINT ignored; its pid is printed. */
function startBackgroundUp(env: Record<string, string | number>): Up {
  return startUp(env, ["-c", 'bash scripts/up.sh & echo "up-pid $!"; wait']);
}

/** `signal` to UP alone (not its group): UP exits, nothing of its group is left, no port stays open. */
async function stopsEverything(up: Up, signal: NodeJS.Signals, ports: Ports, workers: number): Promise<void> {
  const upPid = Number(/up-pid (\d+)/.exec(up.output())?.[1]);
  expect(upPid).toBeGreaterThan(0);
  process.kill(upPid, signal);
  expect(await up.exited).toBe(0); // the outer shell's `wait` returned: UP is gone
  await expect.poll(() => groupMembers(up.pgid), { timeout: 10_000 }).toEqual([]);
  const workerPorts = Array.from({ length: workers }, (_, i) => [ports.WORKER_PORT + i, ports.WORKER_METRICS_PORT + i]).flat();
  for (const port of [...Object.values(ports), ...workerPorts]) expect(await portOpen(port)).toBe(false);
}
