/**
 * A body over GATEWAY_BODY_LIMIT_BYTES (#21 item 3): the client reads an OpenAI-shaped 413 — the
 * official openai SDK as an APIError with status 413 that it does not retry (it had reported an
 * APIConnectionError, EPIPE, and retried), fetch as the 413. A client still sending when the answer
 * comes gets the whole answer and then a FIN, not a reset of the bytes it is still writing.
 */
import { connect } from "node:net";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ScriptedWorker, startScriptedWorker } from "../testing/scripted-worker.ts";
import { startTestGateway, type TestGateway } from "../testing/test-gateway.ts";

const MODEL = "gpt-oss-20b";
// 10 MB of content: over the default 8 MiB cap.
const oversize = { model: MODEL, messages: [{ role: "user" as const, content: "x".repeat(10_000_000) }] };

interface RawOutcome {
  answer: string;
  /** The server half-closed (FIN) after the answer. */
  ended: boolean;
  /** A socket error while sending (EPIPE, ECONNRESET): what made clients drop the 413. */
  error?: string;
}

/** Sends a 10 MB body as fast as the socket takes it and stops at the server's FIN. */
function sendOversize(base: string): Promise<RawOutcome> {
  const { hostname, port } = new URL(base);
  const body = Buffer.alloc(10_000_000, "x");
  return new Promise((resolve) => {
    const out: RawOutcome = { answer: "", ended: false };
    const s = connect(Number(port), hostname);
    s.on("data", (d) => {
      out.answer += d.toString();
    });
    s.on("end", () => {
      out.ended = true;
    });
    s.on("error", (e: NodeJS.ErrnoException) => {
      out.error = e.code ?? e.message;
    });
    s.on("close", () => resolve(out));
    s.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`);
    let offset = 0;
    const pump = () => {
      while (offset < body.length && !out.ended && !s.destroyed) {
        const more = s.write(body.subarray(offset, offset + 65_536));
        offset += 65_536;
        if (!more) return void s.once("drain", pump);
      }
      if (!s.destroyed) s.end();
    };
    pump();
  });
}

describe("a body over the cap", () => {
  let worker: ScriptedWorker;
  let gateway: TestGateway;
  let arrivals = 0;

  beforeAll(async () => {
    worker = await startScriptedWorker([]);
    gateway = await startTestGateway({
      address: worker.address,
      model: MODEL,
      beforeListen: (app) =>
        app.addHook("onRequest", async (request) => {
          if (request.url === "/v1/chat/completions") arrivals++;
        }),
    });
  });
  afterAll(async () => {
    await gateway?.close();
    await worker?.close();
  });

  it("the openai SDK (maxRetries 2) gets a 413 APIError, not a connection error, and does not retry", async () => {
    arrivals = 0;
    const client = new OpenAI({ apiKey: "unused", baseURL: `${gateway.base}/v1`, maxRetries: 2 });
    const err = await client.chat.completions.create(oversize).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(err).not.toBeInstanceOf(OpenAI.APIConnectionError);
    const apiErr = err as InstanceType<typeof OpenAI.APIError>;
    expect(apiErr.status).toBe(413);
    expect(apiErr.error).toMatchObject({ type: "invalid_request_error" });
    expect(apiErr.headers?.get("x-should-retry")).toBe("false");
    expect(arrivals).toBe(1);
  }, 30_000);

  it("fetch gets the 413, OpenAI-shaped, and the gateway serves the next connection", async () => {
    const res = await fetch(`${gateway.base}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(oversize),
    });
    expect(res.status).toBe(413);
    const body = (await res.json()) as { error: { message: string; type: string; code: string } };
    expect(body.error).toMatchObject({ type: "invalid_request_error", code: "request_too_large" });
    expect(body.error.message).toContain(String(8 * 1024 * 1024));
    expect((await fetch(`${gateway.base}/health`)).status).toBe(200);
  }, 30_000);

  it("a raw client still sending gets the whole 413 and then a FIN, not a reset", async () => {
    const out = await sendOversize(gateway.base);
    expect(out.error).toBeUndefined();
    expect(out.ended).toBe(true);
    expect(out.answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(out.answer).toContain('"code":"request_too_large"');
  }, 30_000);
});
