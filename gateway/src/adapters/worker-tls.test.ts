/**
 * TLS from the gateway to the workers (R14 on the gateway's side): a worker that requires mutual TLS
 * serves the official openai SDK through a gateway configured with the CA and a client certificate; a
 * gateway without the client certificate (or speaking plaintext) never routes to it and answers a typed
 * 503; a half-configured client certificate is rejected at startup.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestPki } from "@expertmesh/common/testing";
import { SHAPES } from "@expertmesh/kernels";
import { writeSyntheticCheckpoint } from "@expertmesh/kernels/checkpoint";
import { spawnWorker, type WorkerProcess } from "@expertmesh/worker/testing";
import { credentials } from "@grpc/grpc-js";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayConfigSchema } from "../config.ts";
import { startTestGateway } from "../testing/test-gateway.ts";
import { workerCredentials } from "./worker-pool.ts";

const MODEL = "gpt-oss-tiny";
const pki = createTestPki();
let worker: WorkerProcess;

beforeAll(async () => {
  const dir = join(mkdtempSync(join(tmpdir(), "tls-model-")), "tiny");
  writeSyntheticCheckpoint({ shape: SHAPES.tiny, out: dir, seed: 5 });
  worker = await spawnWorker(
    {
      WORKER_MODEL_PATH: dir,
      WORKER_MODEL_NAME: MODEL,
      WORKER_TLS_CERT_FILE: pki.file("server.crt"),
      WORKER_TLS_KEY_FILE: pki.file("server.key"),
      WORKER_TLS_CLIENT_CA_FILE: pki.file("ca.crt"),
    },
    credentials.createSsl(pki.read("ca.crt"), pki.read("client.key"), pki.read("client.crt")),
  );
}, 60_000);

afterAll(async () => {
  await worker?.stop();
});

async function through(router: Record<string, string>) {
  const gateway = await startTestGateway({ address: worker.address, model: MODEL, config: { router } });
  return { gateway, client: new OpenAI({ apiKey: "unused", baseURL: `${gateway.base}/v1`, maxRetries: 0 }) };
}

describe("gateway → worker over TLS", () => {
  it("with the CA and a client certificate: completions, streamed and not, pass mutual TLS", async () => {
    const { gateway, client } = await through({
      tls_ca_file: pki.file("ca.crt"),
      tls_cert_file: pki.file("client.crt"),
      tls_key_file: pki.file("client.key"),
    });
    try {
      const done = await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 4 });
      expect(done.usage?.completion_tokens).toBeGreaterThan(0);
      const stream = await client.chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: "hi" }],
        max_tokens: 4,
        stream: true,
        stream_options: { include_usage: true },
      });
      let usage = 0;
      for await (const chunk of stream) usage = chunk.usage?.completion_tokens ?? usage;
      expect(usage).toBeGreaterThan(0);
    } finally {
      await gateway.close();
    }
  });

  it.each([
    ["the CA but no client certificate", { tls_ca_file: "ca.crt" }],
    [
      "a client certificate from another CA",
      { tls_ca_file: "ca.crt", tls_cert_file: "rogue-client.crt", tls_key_file: "rogue-client.key" },
    ],
    ["plaintext", {}],
  ])("with %s: the worker is never routable and the SDK gets a typed 503", async (_, files) => {
    const router = Object.fromEntries(Object.entries(files).map(([k, v]) => [k, pki.file(v)]));
    const { gateway, client } = await through(router);
    try {
      await new Promise((r) => setTimeout(r, 300)); // the health watch's first attempt
      const err = await client.chat.completions
        .create({ model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 4 })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.APIError);
      expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
    } finally {
      await gateway.close();
    }
  });

  it("a client certificate without its key is a startup error naming both settings", () => {
    const router = GatewayConfigSchema.parse({ router: { tls_cert_file: pki.file("client.crt") } }).router;
    expect(() => workerCredentials(router)).toThrow(/GATEWAY_WORKER_TLS_CERT_FILE, GATEWAY_WORKER_TLS_KEY_FILE/);
  });
});
