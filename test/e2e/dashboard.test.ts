/**
 * The dashboard (/dashboard) in headless Chromium, over the whole stack as processes: Redis, the
 * orchestrator (groups of 2, the batch runner on), the gateway with API keys on, and two orchestrated
 * workers of the tiny random model started one after the other while the page watches.
 * - The page asks for a key (the API's 401 shows until one is entered); then the group appears forming
 *   with its first rank, and goes ready with both ranks once the second worker joins.
 * - A batch submitted through the openai SDK shows in the queue, its progress advancing to every line done.
 * - The traffic charts (read from the gateway's own /metrics) gain points and show the batch's requests.
 * - axe-core finds no serious or critical violation, at desktop width and at 375 px.
 * - SIGTERM to a rank: the page shows its group draining (the worker stays announced as draining for
 *   WORKER_SHUTDOWN_NOTICE_MS, so the page has the time to see it however slow the machine), and the
 *   draining worker gone once a second SIGTERM ends it and its lease runs out.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, type RedisServer, startRedisServer } from "@expertmesh/common/testing";
import { SHAPES } from "@expertmesh/kernels";
import { writeSyntheticCheckpoint } from "@expertmesh/kernels/checkpoint";
import { spawnWorker, type WorkerProcess } from "@expertmesh/worker/testing";
import OpenAI, { toFile } from "openai";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fitsWidth, launchChromium, screenshot, seriousViolations } from "./browser.ts";
import { Cleanup, orchestratedWorkerEnv, until } from "./support.ts";

const MODEL = "gpt-oss-tiny-dash";
const KEY = "sk-dashboard-test-0123456789";
const LINES = 16;
/** The worker the last test drains: announced as draining far longer than the page needs to show it. */
const DRAINED = "dash-drained";
const DRAIN_NOTICE_MS = 120_000;
const cleanup = new Cleanup();
let redis: RedisServer;
let checkpoint: string;
let orchestrator: string;
let base: string;
let browser: Browser;
let page: Page;
let drained: WorkerProcess;

beforeAll(async () => {
  redis = await startRedisServer();
  checkpoint = join(mkdtempSync(join(tmpdir(), "dash-model-")), "tiny-kv8");
  // 8 KV heads and experts: two ranks split them evenly.
  writeSyntheticCheckpoint({ shape: { ...SHAPES.tiny, numQHeads: 8, numKvHeads: 8, numExperts: 8 }, out: checkpoint, seed: 5 });
  const files = mkdtempSync(join(tmpdir(), "dash-files-"));
  const prefix = `dash-${Date.now()}:`;
  const [orchestratorPort, gatewayPort] = [await freePort(), await freePort()];
  orchestrator = `127.0.0.1:${orchestratorPort}`;
  base = `http://127.0.0.1:${gatewayPort}`;
  cleanup.service("orchestrator/src/main.ts", {
    REDIS_URL: redis.url,
    ORCHESTRATOR_PORT: String(orchestratorPort),
    ORCHESTRATOR_METRICS_PORT: String(await freePort()),
    ORCHESTRATOR_REDIS_KEY_PREFIX: prefix,
    ORCHESTRATOR_GROUP_WORLD_SIZE: "2",
    ORCHESTRATOR_LEASE_TTL_MS: "3000",
    ORCHESTRATOR_PRUNE_INTERVAL_MS: "200",
    ORCHESTRATOR_BATCH_RUNNER: "true",
    ORCHESTRATOR_BATCH_GATEWAY_URL: base,
    // One line at a time: the progress bar has steps to show.
    ORCHESTRATOR_BATCH_CONCURRENCY: "1",
    EXPERTMESH_FILES_DIR: files,
  });
  cleanup.service("gateway/src/main.ts", {
    GATEWAY_PORT: String(gatewayPort),
    GATEWAY_ORCHESTRATOR_ADDRESS: orchestrator,
    GATEWAY_DISCOVERY_REFRESH_MS: "200",
    GATEWAY_API_KEYS: KEY,
    GATEWAY_DASHBOARD_SAMPLE_MS: "500",
    REDIS_URL: redis.url,
    ORCHESTRATOR_REDIS_KEY_PREFIX: prefix,
    EXPERTMESH_FILES_DIR: files,
  });
  await until(
    () => fetch(`${base}/health`).then((r) => r.status),
    (s) => s === 200,
    60_000,
  );
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
});
afterAll(async () => {
  await browser?.close();
  await cleanup.run();
  await redis?.stop();
});

async function worker(env: Record<string, string> = {}) {
  const w = await spawnWorker({ ...orchestratedWorkerEnv(checkpoint, MODEL, orchestrator), ...env });
  cleanup.add(() => w.stop());
  return w;
}

/** A number-valued attribute of the first element matching `selector` (NaN when absent). */
const attr = (selector: string, name: string) =>
  page
    .locator(selector)
    .first()
    .getAttribute(name, { timeout: 1000 })
    .then(Number)
    .catch(() => Number.NaN);

describe("the dashboard", () => {
  it("asks for a key, then shows a group forming and going ready", async () => {
    await page.goto(`${base}/dashboard`);
    const error = page.getByTestId("api-error");
    await error.waitFor();
    expect(await error.textContent()).toContain("HTTP 401");
    await page.getByLabel("API key").fill(KEY);
    await page.getByRole("button", { name: "Save key" }).click();
    await page.getByText("No engine group yet.").waitFor();

    // An orchestrated worker registers, then waits for its group: it serves (spawnWorker resolves) only
    // once the second rank joined, so the first is started without waiting for it.
    const first = worker();
    await page.locator("[data-testid=group][data-state=forming]").waitFor({ timeout: 120_000 });
    await screenshot(page, "dashboard-forming");
    [, drained] = await Promise.all([
      first,
      worker({
        WORKER_ID: DRAINED,
        WORKER_SHUTDOWN_NOTICE_MS: String(DRAIN_NOTICE_MS),
        WORKER_SHUTDOWN_GRACE_MS: String(DRAIN_NOTICE_MS + 30_000),
      }),
    ]);
    const ready = page.locator("[data-testid=group][data-state=ready]");
    await ready.waitFor({ timeout: 120_000 });
    expect(await ready.getByTestId("ranks").textContent()).toMatch(/^2 of 2: 0 \S+ \(ready\), 1 \S+ \(ready\)$/);
    expect(await ready.textContent()).toContain(MODEL);
    expect(await page.locator("[data-testid=group]").count()).toBe(1);
    await screenshot(page, "dashboard-ready");
  });

  it("shows a batch's progress advancing to completion, and the traffic charts updating", async () => {
    const client = new OpenAI({ apiKey: KEY, baseURL: `${base}/v1`, maxRetries: 0 });
    await until(
      () => fetch(`${base}/ready`).then((r) => r.status),
      (s) => s === 200,
      60_000,
    );
    const pointsBefore = await attr("[data-testid='chart-Requests']", "data-points");
    const input = Array.from({ length: LINES }, (_, i) =>
      JSON.stringify({
        custom_id: `line-${i}`,
        method: "POST",
        url: "/v1/chat/completions",
        body: { model: MODEL, messages: [{ role: "user", content: `Count to ${i}` }], max_tokens: 16, seed: i },
      }),
    ).join("\n");
    const file = await client.files.create({ file: await toFile(Buffer.from(input), "dash.jsonl"), purpose: "batch" });
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });

    const card = `[data-testid=batch][data-id='${batch.id}']`;
    // Progress as the page showed it, at every change of the card.
    const seen: number[] = [];
    for (;;) {
      const done = await attr(card, "data-done");
      if (!Number.isNaN(done) && seen.at(-1) !== done) seen.push(done);
      if (done === LINES && (await page.locator(card).getAttribute("data-status")) === "completed") break;
      await page.waitForFunction(
        ([sel, last]) =>
          document.querySelector(sel as string)?.getAttribute("data-done") !== String(last) ||
          document.querySelector(sel as string)?.getAttribute("data-status") === "completed",
        [card, done] as const,
        { timeout: 120_000 },
      );
    }
    // It was shown unfinished, then finished, never going back.
    expect(seen[0]).toBeLessThan(LINES);
    expect(seen.at(-1)).toBe(LINES);
    expect([...seen].sort((a, b) => a - b)).toEqual(seen);
    // A failed line's answer (from the batch's error file) says why, should any fail.
    const finished = await client.batches.retrieve(batch.id);
    const errors = finished.error_file_id ? (await (await client.files.content(finished.error_file_id)).text()).slice(0, 2000) : "";
    expect(finished.request_counts, errors).toMatchObject({ total: LINES, completed: LINES, failed: 0 });
    expect(await page.locator(card).textContent()).toMatch(/16 of 16 lines \(0 failed\) · [\d.]+ lines\/s/);
    expect(await page.getByTestId("batch-summary").textContent()).toContain("1 completed");

    // The charts gained points and show the batch's requests and their first-token times.
    await page.waitForFunction(
      () => {
        const max = (title: string) => Number(document.querySelector(`[data-testid='chart-${title}']`)?.getAttribute("data-peak") ?? 0);
        return max("Requests") > 0 && max("Time to first token") > 0;
      },
      undefined,
      { timeout: 60_000 },
    );
    expect(await attr("[data-testid='chart-Requests']", "data-points")).toBeGreaterThan(Number.isNaN(pointsBefore) ? 0 : pointsBefore);
    await screenshot(page, "dashboard-batch");
  });

  it("has no serious accessibility violation, at desktop width and at 375 px", async () => {
    expect(await seriousViolations(page)).toEqual([]);
    await page.setViewportSize({ width: 375, height: 812 });
    expect(await fitsWidth(page)).toBe(true);
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, "dashboard-375");
  });

  it("shows a group draining once a rank gets SIGTERM, then the drained worker gone", async () => {
    const card = (state: string) => page.locator(`[data-testid=group][data-state=${state}]`, { hasText: DRAINED });
    await card("ready").waitFor();
    drained.process.kill("SIGTERM");
    const draining = card("draining");
    // Well within the notice: a page that shows no drain by then does not show it.
    await draining.waitFor({ timeout: DRAIN_NOTICE_MS / 2 });
    expect(await draining.locator(".badge").textContent()).toBe("draining");
    expect(await draining.getByTestId("ranks").textContent()).toContain(`${DRAINED} (draining)`);
    expect(await seriousViolations(page)).toEqual([]);
    expect(await fitsWidth(page)).toBe(true);
    await screenshot(page, "dashboard-draining");
    // A second SIGTERM ends the notice at once; the roster drops the worker when its lease runs out.
    await drained.stop();
    await page.locator("[data-testid=group]", { hasText: DRAINED }).waitFor({ state: "detached", timeout: 60_000 });
    expect(await page.locator("[data-testid=group][data-state=draining]").count()).toBe(0);
  });
});
