import { createLogger, createMetricsRegistry } from "@expertmesh/common";
import { Accelerator, type Member, MemberState } from "@expertmesh/proto/cluster";
import type { FastifyInstance } from "fastify";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayConfigSchema } from "./config.ts";
import { StaticWorkerDirectory } from "./domain/worker-directory.ts";
import { createServer } from "./server.ts";

const KEY = "sk-test-0123456789";
const member = (id: string, model: string, state: MemberState = MemberState.MEMBER_STATE_READY, device = "cpu"): Member => ({
  workerId: id,
  address: "127.0.0.1:1",
  model,
  accelerator: Accelerator.ACCELERATOR_CPU,
  state,
  groupId: "",
  rank: 0,
  worldSize: 1,
  registeredUnixMs: 1_700_000_000_000,
  numExperts: 0,
  wantsGroup: false,
  device,
  precision: "default",
});

let app: FastifyInstance;
let base: string;

beforeAll(async () => {
  const config = GatewayConfigSchema.parse({ api_keys: [KEY], http: { port: 0 } });
  app = createServer({
    config,
    log: createLogger("gateway-test", "silent"),
    directory: new StaticWorkerDirectory([
      member("w1", "gpt-oss-20b"),
      member("w2", "gpt-oss-120b", MemberState.MEMBER_STATE_STARTING, "cuda-emu"),
    ]),
    registry: createMetricsRegistry("gateway-test"),
  });
  base = await app.listen({ host: "127.0.0.1", port: 0 });
});
afterAll(async () => {
  await app.close();
});

describe("gateway HTTP surface", () => {
  it("lists the served models through the official openai SDK", async () => {
    const client = new OpenAI({ apiKey: KEY, baseURL: `${base}/v1` });
    const ids: string[] = [];
    for await (const m of client.models.list()) ids.push(m.id);
    expect(ids).toEqual(["gpt-oss-120b", "gpt-oss-20b"]);
    const one = await client.models.retrieve("gpt-oss-20b");
    expect(one).toMatchObject({ id: "gpt-oss-20b", object: "model", owned_by: "openai" });
  });

  it("reports the devices the workers of each model run on (WORKER_DEVICE, from the roster)", async () => {
    const client = new OpenAI({ apiKey: KEY, baseURL: `${base}/v1` });
    const devices: Record<string, unknown> = {};
    for await (const m of client.models.list()) devices[m.id] = (m as unknown as { devices: string[] }).devices;
    expect(devices).toEqual({ "gpt-oss-120b": ["cuda-emu"], "gpt-oss-20b": ["cpu"] });
    expect(await client.models.retrieve("gpt-oss-120b")).toMatchObject({ devices: ["cuda-emu"] });
  });

  it("answers an unknown model with an OpenAI-shaped 404 the SDK understands", async () => {
    const client = new OpenAI({ apiKey: KEY, baseURL: `${base}/v1`, maxRetries: 0 });
    const err = await client.models.retrieve("nope").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect((err as InstanceType<typeof OpenAI.NotFoundError>).error as unknown).toMatchObject({
      type: "invalid_request_error",
      code: "model_not_found",
      param: "model",
    });
  });

  it("rejects a missing or wrong key with 401 and allows the public probes", async () => {
    const bad = new OpenAI({ apiKey: "sk-wrong-key-xxxx", baseURL: `${base}/v1`, maxRetries: 0 });
    await expect(bad.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    const none = await fetch(`${base}/v1/models`);
    expect(none.status).toBe(401);
    expect(((await none.json()) as { error: { code: string } }).error.code).toBe("invalid_api_key");
    for (const path of ["/health", "/metrics"]) expect((await fetch(`${base}${path}`)).status).toBe(200);
  });

  it("sets x-request-id on every response, echoing a well-formed one", async () => {
    const echoed = await fetch(`${base}/health`, { headers: { "x-request-id": "abc-123" } });
    expect(echoed.headers.get("x-request-id")).toBe("abc-123");
    const minted = await fetch(`${base}/nope`, { headers: { authorization: `Bearer ${KEY}` } });
    expect(minted.status).toBe(404);
    expect(minted.headers.get("x-request-id")).toMatch(/^req_[0-9a-f]{32}$/);
    expect(await minted.json()).toEqual({
      error: { message: "Unknown request URL: GET /nope", type: "invalid_request_error", param: null, code: "not_found" },
    });
  });

  it("reports readiness from the roster", async () => {
    const res = await fetch(`${base}/ready`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      status: "ready",
      discovery: "ok",
      roster_age_ms: 0,
      ready_workers: 1,
      workers: 2,
      models: ["gpt-oss-20b"],
    });
  });
});
