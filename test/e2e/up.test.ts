/**
 * UP, exactly as a user runs it: `bash scripts/up.sh`, then Ctrl-C. Ctrl-C is simulated as a terminal
 * does it: SIGINT to the whole foreground process group. Afterwards no process of that group may remain
 * and every port it opened must be closed.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createConnection } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "@expertmesh/common/testing";
import OpenAI, { toFile } from "openai";
import { afterAll, describe, expect, it } from "vitest";

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

let up: ChildProcess | undefined;
afterAll(() => {
  if (up?.pid && up.exitCode === null) process.kill(-up.pid, "SIGKILL");
});

describe("UP (scripts/up.sh)", () => {
  it("brings the stack up, answers GET /health, and leaves nothing running after Ctrl-C", async () => {
    const ports = {
      GATEWAY_PORT: await freePort(),
      ORCHESTRATOR_PORT: await freePort(),
      WORKER_PORT: await freePort(),
      WORKER_METRICS_PORT: await freePort(),
      EXPERTMESH_REDIS_PORT: await freePort(),
      ORCHESTRATOR_METRICS_PORT: await freePort(),
    };
    const env = { ...process.env, ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])) };
    up = spawn("bash", ["scripts/up.sh"], { cwd: root, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    const pgid = up.pid as number;
    let output = "";
    up.stderr?.on("data", (d: Buffer) => {
      output += d.toString();
    });
    const url = await new Promise<string>((resolve, reject) => {
      up?.stdout?.on("data", (d: Buffer) => {
        output += d.toString();
        const m = /ExpertMesh is up: (http:\/\/\S+)/.exec(output);
        if (m?.[1]) resolve(m[1]);
      });
      up?.on("exit", (code) => reject(new Error(`up.sh exited early with ${code}:\n${output}`)));
    });
    expect(url).toBe(`http://127.0.0.1:${ports.GATEWAY_PORT}`);

    const health = await fetch(`${url}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: "ok" });
    // The worker loaded the synthetic model, registered through the orchestrator (Redis-backed
    // membership) as ready, and the gateway sees it.
    await expect.poll(async () => (await fetch(`${url}/ready`)).status, { timeout: 30_000 }).toBe(200);
    const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: Array<{ id: string }> };
    expect(models.data.map((m) => m.id)).toEqual(["gpt-oss-synthetic"]);
    // A chat completion through the whole stack: SDK → gateway → (orchestrator roster) → worker → engine.
    const openai = new OpenAI({ apiKey: "local-dev", baseURL: `${url}/v1`, maxRetries: 0 });
    const completion = await openai.chat.completions.create({
      model: "gpt-oss-synthetic",
      messages: [{ role: "user", content: "Hello!" }],
      max_tokens: 8,
      temperature: 0,
    });
    expect(completion.object).toBe("chat.completion");
    expect(completion.usage?.completion_tokens).toBeGreaterThan(0);
    // A batch through the orchestrator's batch runner (BullMQ on the same Redis), back through the gateway.
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
    expect(groupMembers(pgid).length).toBeGreaterThanOrEqual(5); // bash, redis, orchestrator, worker, gateway

    const exited = new Promise<number | null>((resolve) => up?.on("exit", (code) => resolve(code)));
    process.kill(-pgid, "SIGINT");
    const code = await exited;
    expect(code).toBe(130);
    await expect.poll(() => groupMembers(pgid), { timeout: 10_000 }).toEqual([]);
    for (const port of Object.values(ports)) expect(await portOpen(port)).toBe(false);
  });
});
