/**
 * Hostile names (#20 item 8): an over-long id in a path answers an OpenAI-shaped 4xx on every route
 * that takes one (files, batches, responses), not Fastify's own body; an uploaded file name with a NUL
 * byte or another control character is 400 invalid_request_error with param "file", and nothing is
 * stored. Real HTTP, real Redis.
 */
import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type RedisServer, startRedisServer } from "@expertmesh/common/testing";
import { type BatchApi, createBatchService, LocalFileStorage } from "@expertmesh/orchestrator/batches";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "../testing/test-gateway.ts";

let redis: RedisServer;
let client: Redis;
let api: BatchApi;
let gateway: TestGateway;
let filesDir: string;

beforeAll(async () => {
  redis = await startRedisServer();
  client = new Redis(redis.url);
  filesDir = mkdtempSync(join(tmpdir(), "names-"));
  api = createBatchService({ redis: client, redisUrl: redis.url, keyPrefix: "n:", storage: new LocalFileStorage(filesDir) });
  // No worker: nothing here generates.
  gateway = await startTestGateway({ address: "127.0.0.1:1", model: "m", deps: { batches: api } });
}, 30_000);

afterAll(async () => {
  await gateway?.close();
  await api?.close();
  client?.disconnect();
  await redis?.stop();
});

const LONG = "a".repeat(300);

describe("over-long path ids (#20 item 8)", () => {
  it.each([
    ["GET", `/v1/files/${LONG}`],
    ["GET", `/v1/files/file-${LONG}/content`],
    ["DELETE", `/v1/files/${LONG}`],
    ["GET", `/v1/batches/${LONG}`],
    ["POST", `/v1/batches/batch_${LONG}/cancel`],
    ["GET", `/v1/responses/resp_${LONG}`],
    ["DELETE", `/v1/responses/${LONG}`],
    ["GET", `/v1/responses/${LONG}/input_items`],
  ])("%s %s… is an OpenAI-shaped 4xx with a request id", async (method, path) => {
    const res = await fetch(`${gateway.base}${path}`, { method });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(res.headers.get("x-request-id")).toMatch(/^req_/);
    const body = (await res.json()) as { error: { message: string } };
    expect(body).toEqual({
      error: { message: expect.any(String), type: "invalid_request_error", param: null, code: expect.any(String) },
    });
    expect(body.error.message).not.toContain(LONG);
  });

  it("a malformed percent-encoding in a path is OpenAI-shaped too", async () => {
    const res = await fetch(`${gateway.base}/v1/files/%zz`);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { type: "invalid_request_error" } });
  });
});

describe("uploaded file names (#20 item 8)", () => {
  async function uploadNamed(filename: string, purpose = "batch"): Promise<Response> {
    const body = Buffer.concat([
      Buffer.from(`--B\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n${purpose}\r\n`),
      Buffer.from('--B\r\nContent-Disposition: form-data; name="file"; filename="'),
      Buffer.from(filename, "utf8"),
      Buffer.from('"\r\n\r\n{"custom_id":"a","method":"POST","url":"/v1/completions","body":{"model":"m"}}\n\r\n--B--\r\n'),
    ]);
    return fetch(`${gateway.base}/v1/files`, { method: "POST", headers: { "content-type": "multipart/form-data; boundary=B" }, body });
  }

  it.each([
    ["a NUL byte", "in\u0000put.jsonl"],
    ["an escape", "in\u001bput.jsonl"],
    ["a DEL", "in\u007fput.jsonl"],
  ])("a name with %s is 400 param file, and nothing is stored", async (_what, name) => {
    const res = await uploadNamed(name);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { type: "invalid_request_error", param: "file" } });
    expect(readdirSync(filesDir)).toEqual([]);
  });

  it("a purpose other than batch, sent before the file, is 400 param purpose, and nothing is stored", async () => {
    const res = await uploadNamed("input.jsonl", "fine-tune");
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { type: "invalid_request_error", param: "purpose" } });
    expect(readdirSync(filesDir)).toEqual([]);
  });

  it("a plain name is kept", async () => {
    const res = await uploadNamed("input ü.jsonl");
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ filename: "input ü.jsonl", purpose: "batch" });
  });
});
