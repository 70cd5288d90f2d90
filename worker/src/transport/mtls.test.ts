/**
 * R14 at the worker: with a client CA configured the gRPC server requires mutual TLS — a client
 * without a certificate, with one from another CA, or not trusting the server's CA fails at the
 * handshake; a client with a certificate from the configured CA gets through.
 */
import { createLogger } from "@expertmesh/common";
import { createTestPki } from "@expertmesh/common/testing";
import { WorkerClient } from "@expertmesh/proto/worker";
import { type ChannelCredentials, credentials, Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningWorker, startWorker } from "../app.ts";
import { loadWorkerConfig } from "../config.ts";

const pki = createTestPki();
const f = pki.file;
let worker: RunningWorker;

beforeAll(async () => {
  const config = loadWorkerConfig({
    WORKER_PORT: "0",
    WORKER_METRICS_PORT: "0",
    WORKER_TLS_CERT_FILE: f("server.crt"),
    WORKER_TLS_KEY_FILE: f("server.key"),
    WORKER_TLS_CLIENT_CA_FILE: f("ca.crt"),
  });
  worker = await startWorker(config, createLogger("mtls-test", "silent"));
});
afterAll(async () => {
  await worker.close();
});

function info(creds: ChannelCredentials): Promise<{ ok: boolean; code?: number }> {
  const client = new WorkerClient(worker.address, creds);
  return new Promise((resolve) => {
    client.info({}, new Metadata(), { deadline: Date.now() + 5000 }, (err: ServiceError | null) => {
      client.close();
      resolve(err ? { ok: false, code: err.code } : { ok: true });
    });
  });
}

const read = pki.read;

describe("mutual TLS on the worker", () => {
  it("accepts a client certificate from the configured CA", async () => {
    expect(await info(credentials.createSsl(read("ca.crt"), read("client.key"), read("client.crt")))).toEqual({ ok: true });
  });

  it("rejects a client without a certificate at the handshake", async () => {
    expect(await info(credentials.createSsl(read("ca.crt")))).toEqual({ ok: false, code: status.UNAVAILABLE });
  });

  it("rejects a client certificate from another CA", async () => {
    expect(await info(credentials.createSsl(read("ca.crt"), read("rogue-client.key"), read("rogue-client.crt")))).toEqual({
      ok: false,
      code: status.UNAVAILABLE,
    });
  });

  it("a client that does not trust the server's CA cannot connect, nor can a plaintext one", async () => {
    expect(await info(credentials.createSsl(read("rogue-ca.crt"), read("client.key"), read("client.crt")))).toEqual({
      ok: false,
      code: status.UNAVAILABLE,
    });
    expect(await info(credentials.createInsecure())).toMatchObject({ ok: false });
  });
});
